//! The status machine under races: a restart the governor granted must not
//! undo an operator's pause that lands in the window between the restart
//! reading the workspace and writing its new status.

use async_trait::async_trait;
use chrono::Utc;
use molecule_provisioner::local::LocalProvisioner;
use molecule_provisioner::{
    ExecOutput, FileEntry, FileRoot, FileSource, ListDepth, Observation, ProvisionError,
    Provisioner, Result, Started, WorkspaceSpec,
};
use molecule_server::app::App;
use molecule_server::app::auth::Credentials;
use molecule_server::app::workspaces::lifecycle::PROVISIONER_TASK;
use molecule_server::config::Config;
use molecule_store::NewWorkspace;
use molecule_types::{Transition, WorkspaceStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::fresh_database;

/// A real local backend whose first `remove` waits at a gate when `armed`
/// (the test holds the governed restart right inside its read-then-write
/// window), and whose starts get no answer while `starts_unanswered`.
struct GatedRemove {
    inner: LocalProvisioner,
    armed: AtomicBool,
    starts_unanswered: AtomicBool,
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl Provisioner for GatedRemove {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn ensure(&self, spec: &WorkspaceSpec) -> Result<Started> {
        if self.starts_unanswered.load(Ordering::SeqCst) {
            return Err(ProvisionError::Unavailable(
                "daemon answered 500: start failed".into(),
            ));
        }
        self.inner.ensure(spec).await
    }
    async fn stop(&self, id: Uuid) -> Result<()> {
        self.inner.stop(id).await
    }
    async fn remove(&self, id: Uuid, volumes: bool) -> Result<()> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        self.inner.remove(id, volumes).await
    }
    async fn inspect(&self, id: Uuid) -> Observation {
        self.inner.inspect(id).await
    }
    async fn logs(&self, id: Uuid, tail: usize) -> Result<String> {
        self.inner.logs(id, tail).await
    }
    async fn exec(&self, id: Uuid, cmd: &[String], timeout: Duration) -> Result<ExecOutput> {
        self.inner.exec(id, cmd, timeout).await
    }
    async fn list(&self) -> Result<Vec<(Uuid, Observation)>> {
        self.inner.list().await
    }
    fn platform_listen_ip(&self) -> Option<std::net::IpAddr> {
        self.inner.platform_listen_ip()
    }
    async fn list_files(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        depth: ListDepth,
    ) -> Result<Vec<FileEntry>> {
        self.inner.list_files(id, root, path, depth).await
    }
    async fn read_file(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>> {
        self.inner.read_file(id, root, path, max_bytes).await
    }
    async fn write_files(&self, id: Uuid, files: &[(String, Vec<u8>)]) -> Result<FileSource> {
        self.inner.write_files(id, files).await
    }
    async fn delete_path(&self, id: Uuid, path: &str) -> Result<FileSource> {
        self.inner.delete_path(id, path).await
    }
}

/// A new row in `provisioning`, as creation writes it.
fn provisioning_row(id: Uuid, name: &str) -> NewWorkspace {
    NewWorkspace {
        id,
        name: name.into(),
        role: None,
        tier: 1,
        status: WorkspaceStatus::Provisioning,
        url: None,
        parent_id: None,
        awareness_namespace: None,
        runtime: "langgraph".into(),
        workspace_dir: None,
        workspace_access: "none".into(),
        source_bundle_id: None,
        x: 0.0,
        y: 0.0,
        now: Utc::now(),
    }
}

#[tokio::test]
async fn a_governed_restart_does_not_undo_a_concurrent_pause() {
    let (database, dir) = fresh_database().await;
    let dir = dir.unwrap_or_default();
    let store = molecule_store::open(&database.store_url()).await.unwrap();
    let gate = Arc::new(GatedRemove {
        inner: LocalProvisioner::new(dir.0.clone()),
        armed: AtomicBool::new(true),
        starts_unanswered: AtomicBool::new(false),
        entered: Notify::new(),
        release: Notify::new(),
    });
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let mut config = Config::for_tests(database);
    config.data_dir = dir.0.clone();
    // The governor grants the first restart at once.
    config.governor.backoff_start = Duration::ZERO;
    let app = App::new(
        Arc::new(config),
        store.clone(),
        Some(gate.clone()),
        shutdown,
    );

    let id = Uuid::new_v4();
    store
        .workspace_insert(&provisioning_row(id, "crashy"))
        .await
        .unwrap();
    let online = store
        .workspace_transition(id, Transition::EXTERNAL_ONLINE, None, Utc::now())
        .await
        .unwrap();
    assert!(online);

    // Its runtime died and the governor granted a restart; the provisioner
    // task (this process leads it, as the task runner checks before each
    // activation) takes it up, reads the row and stops at the gate.
    assert!(app.lead(PROVISIONER_TASK).await, "the only process leads");
    app.workspace_gone(id, "runtime exited").await;
    let restarting = tokio::spawn({
        let app = app.clone();
        async move { app.provision_pending().await }
    });
    tokio::time::timeout(Duration::from_secs(30), gate.entered.notified())
        .await
        .expect("the restart reaches the runtime's removal");

    // An operator pauses it meanwhile.
    let token = app.issue_token(id).await.unwrap();
    let operator = app
        .auth_workspace(id, Credentials::remote(Some(&token)))
        .await
        .unwrap();
    let paused = app.workspace_pause(operator).await.expect("pause");
    assert_eq!(paused.paused_count, 1);
    gate.release.notify_one();
    restarting.await.unwrap().expect("provisioner activation");

    let row = store.workspace_get(id).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.status_reason.as_deref()),
        (WorkspaceStatus::Paused, Some("paused by an operator"))
    );
    // The provisioner did not start it again either.
    app.provision_pending().await.unwrap();
    assert_eq!(
        store.workspace_get(id).await.unwrap().unwrap().status,
        WorkspaceStatus::Paused
    );
}

#[tokio::test]
async fn a_start_without_an_answer_stays_provisioning_and_says_why() {
    let (database, dir) = fresh_database().await;
    let dir = dir.unwrap_or_default();
    let store = molecule_store::open(&database.store_url()).await.unwrap();
    let backend = Arc::new(GatedRemove {
        inner: LocalProvisioner::new(dir.0.clone()),
        armed: AtomicBool::new(false),
        starts_unanswered: AtomicBool::new(true),
        entered: Notify::new(),
        release: Notify::new(),
    });
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let mut config = Config::for_tests(database);
    config.data_dir = dir.0.clone();
    let app = App::new(
        Arc::new(config),
        store.clone(),
        Some(backend.clone()),
        shutdown,
    );
    let id = Uuid::new_v4();
    store
        .workspace_insert(&provisioning_row(id, "unanswered"))
        .await
        .unwrap();
    app.provision_pending().await.unwrap();
    let row = crate::eventually(Duration::from_secs(10), || async {
        let row = store.workspace_get(id).await.unwrap().unwrap();
        row.status_reason
            .as_deref()
            .is_some_and(|r| r.contains("retrying"))
            .then_some(row)
    })
    .await
    .expect("the reason names the unanswered start");
    assert_eq!(
        row.status,
        WorkspaceStatus::Provisioning,
        "unknown, not failed"
    );
    assert!(row.status_reason.unwrap().contains("daemon answered 500"));
}
