//! The status machine under races: a restart the governor granted must not
//! undo an operator's pause that lands in the window between the restart
//! reading the workspace and writing its new status, and a health sweep
//! must not act on what it saw of a runtime that was replaced since.

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

/// A one-shot stop on a backend call: when `armed`, the next call tells
/// `entered` and waits for `release`.
#[derive(Default)]
struct Gate {
    armed: AtomicBool,
    entered: Notify,
    release: Notify,
}

impl Gate {
    fn armed() -> Self {
        let gate = Self::default();
        gate.armed.store(true, Ordering::SeqCst);
        gate
    }

    /// Whether this call stopped at the gate (and was released).
    async fn pass(&self) -> bool {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return false;
        }
        self.entered.notify_one();
        self.release.notified().await;
        true
    }

    async fn reached(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.entered.notified())
            .await
            .expect("the call reaches its gate");
    }
}

/// A real local backend with gates: on its first `remove` (the test holds
/// a governed restart right inside its read-then-write window), and on its
/// first `inspect`, which then answers "not found" (an observation of a
/// runtime that has gone since). Its starts get no answer while
/// `starts_unanswered`.
struct Gated {
    inner: LocalProvisioner,
    remove: Gate,
    inspect: Gate,
    starts_unanswered: AtomicBool,
}

impl Gated {
    fn new(dir: &std::path::Path) -> Self {
        Self {
            inner: LocalProvisioner::new(dir.to_path_buf()),
            remove: Gate::default(),
            inspect: Gate::default(),
            starts_unanswered: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl Provisioner for Gated {
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
        self.remove.pass().await;
        self.inner.remove(id, volumes).await
    }
    async fn inspect(&self, id: Uuid) -> Observation {
        if self.inspect.pass().await {
            return Observation::NotFound;
        }
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

/// An app on a fresh database with a [`Gated`] backend on its data
/// directory, shaped by `shape`; its governor grants a first restart at
/// once.
struct Setup {
    app: App,
    store: Arc<dyn molecule_store::Store>,
    backend: Arc<Gated>,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: crate::TempDir,
}

async fn setup(shape: impl FnOnce(Gated) -> Gated) -> Setup {
    let (database, dir) = fresh_database().await;
    let dir = dir.unwrap_or_default();
    let store = molecule_store::open(&database.store_url()).await.unwrap();
    let backend = Arc::new(shape(Gated::new(&dir.0)));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut config = Config::for_tests(database);
    config.data_dir = dir.0.clone();
    config.governor.backoff_start = Duration::ZERO;
    let app = App::new(
        Arc::new(config),
        store.clone(),
        Some(backend.clone()),
        shutdown,
    );
    Setup {
        app,
        store,
        backend,
        _stop: stop,
        _dir: dir,
    }
}

#[tokio::test]
async fn a_governed_restart_does_not_undo_a_concurrent_pause() {
    let Setup {
        app,
        store,
        backend: gate,
        _stop,
        _dir,
    } = setup(|g| Gated {
        remove: Gate::armed(),
        ..g
    })
    .await;

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
    gate.remove.reached().await;

    // An operator pauses it meanwhile.
    let token = app.issue_token(id).await.unwrap();
    let operator = app
        .auth_workspace(id, Credentials::remote(Some(&token)))
        .await
        .unwrap();
    let paused = app.workspace_pause(operator).await.expect("pause");
    assert_eq!(paused.paused_count, 1);
    gate.remove.release.notify_one();
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
    let Setup {
        app,
        store,
        backend: _,
        _stop,
        _dir,
    } = setup(|g| Gated {
        starts_unanswered: AtomicBool::new(true),
        ..g
    })
    .await;
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

/// A sweep lists an online workspace and inspects it; before the answer
/// ("not found") comes back, an operator's restart has replaced the runtime
/// and the new one is online. The answer was about the old runtime: the
/// sweep leaves the workspace alone. (Regression: the sweep re-read the row,
/// saw it live, and restarted a healthy workspace; seen in CI as a restart
/// decision after `POST /restart`.)
#[tokio::test]
async fn a_sweep_does_not_act_on_a_runtime_replaced_while_it_looked() {
    let Setup {
        app,
        store,
        backend,
        _stop,
        _dir,
    } = setup(|g| Gated {
        inspect: Gate::armed(),
        ..g
    })
    .await;
    let id = Uuid::new_v4();
    store
        .workspace_insert(&provisioning_row(id, "replaced"))
        .await
        .unwrap();
    assert!(
        store
            .workspace_transition(id, Transition::EXTERNAL_ONLINE, None, Utc::now())
            .await
            .unwrap()
    );

    let sweeping = tokio::spawn({
        let app = app.clone();
        async move { app.health_sweep().await }
    });
    backend.inspect.reached().await;
    // The restart, as the operator's request and the new runtime's
    // registration write it.
    for transition in [Transition::OPERATOR_RESTART, Transition::EXTERNAL_ONLINE] {
        assert!(
            store
                .workspace_transition(id, transition, None, Utc::now())
                .await
                .unwrap()
        );
    }
    backend.inspect.release.notify_one();
    sweeping.await.unwrap().expect("health sweep");

    let row = store.workspace_get(id).await.unwrap().unwrap();
    assert_eq!(row.status, WorkspaceStatus::Online, "{row:?}");
    assert!(
        !app.breaker_open(),
        "the breaker held nothing back: the sweep itself left it alone"
    );
}
