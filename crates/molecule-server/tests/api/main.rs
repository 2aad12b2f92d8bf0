//! Integration tests: the real server on 127.0.0.1:0, driven through
//! `molecule-client` over real HTTP and WebSocket. Each test gets a fresh
//! database: a SQLite temp file by default, or a new database on the
//! PostgreSQL server named by `MOLECULE_TEST_DATABASE_URL` (CI runs the
//! suite once each way).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

/// Run each named `async fn(Backend)` of the module once per runtime
/// backend, as `local::<name>` and `docker::<name>`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod local {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Local).await } )*
        }
        mod docker {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Docker).await } )*
        }
    };
}

mod a2a;
mod a2a_bodies;
mod a2a_runtime;
mod a2a_tls;
mod a2a_upstream;
mod adversarial;
mod approvals;
mod auth;
mod bad_input;
mod canvas;
mod channels;
mod cli;
mod conformance;
mod content;
mod dashboard;
mod delegation;
mod events;
mod faults;
mod lifecycle;
mod liveness;
mod memories;
mod middleware;
mod org;
mod plugins;
mod registry;
pub mod replicas;
mod scheduler;
mod schedules;
mod secrets;
mod status_machine;
mod telemetry;
mod terminal;
mod transcript;
mod webhooks;
mod workspaces;

use molecule_client::Client;
use molecule_server::config::{Config, Database};
use molecule_server::{RunningServer, Server};
use molecule_types::dto::{CreateWorkspace, Heartbeat, RegisterRequest};
use serde_json::json;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use uuid::Uuid;

pub struct TestServer {
    pub server: RunningServer,
    pub client: Client,
    _dir: Option<TempDir>,
    /// With the Docker backend: removes what the server made, also when
    /// the test fails half-way.
    _docker: Option<DockerSweep>,
    /// The database opened beside the server, once (see [`store_of`]).
    store: tokio::sync::OnceCell<std::sync::Arc<dyn molecule_store::Store>>,
}

/// A temp directory removed on drop.
/// Write `text` to `dir/rel`, creating the directories on the way.
pub fn write_file(dir: &std::path::Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("directories");
    std::fs::write(path, text).expect("write");
}

/// Every container and volume of one platform instance (its
/// `molecule.instance` label), removed when dropped.
pub struct DockerSweep(String);

impl Drop for DockerSweep {
    fn drop(&mut self) {
        let label = format!("label=molecule.instance={}", self.0);
        let list = |args: &[&str]| -> Vec<String> {
            std::process::Command::new("docker")
                .args(args)
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let containers = list(&["ps", "-aq", "--filter", &label]);
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(containers.iter().map(String::as_str));
            let _ = std::process::Command::new("docker").args(&args).output();
        }
        let volumes = list(&["volume", "ls", "-q", "--filter", &label]);
        if !volumes.is_empty() {
            let mut args = vec!["volume", "rm", "-f"];
            args.extend(volumes.iter().map(String::as_str));
            let _ = std::process::Command::new("docker").args(&args).output();
        }
    }
}

pub struct TempDir(pub std::path::PathBuf);

/// A new empty `molecule-test-*` directory under the system's temp dir.
impl Default for TempDir {
    fn default() -> TempDir {
        let dir = std::env::temp_dir().join(format!("molecule-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn fresh_database() -> (Database, Option<TempDir>) {
    match std::env::var("MOLECULE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => {
            use sqlx::Connection;
            let name = format!("molecule_t_{}", Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .expect("connect to MOLECULE_TEST_DATABASE_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
            (Database::Postgres(format!("{base}/{name}")), None)
        }
        None => {
            let dir = TempDir::default();
            (Database::Sqlite(dir.0.join("molecule.db")), Some(dir))
        }
    }
}

/// Start a development-mode server; `tweak` adjusts the configuration.
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let (db, dir) = fresh_database().await;
    let dir = dir.unwrap_or_else(TempDir::default);
    let mut config = Config::for_tests(db);
    config.data_dir = dir.0.clone();
    // The registration probe sends requests of its own to agents; tests
    // that count what reaches an agent or list events exactly turn it on
    // only where they test it (conformance.rs).
    config.a2a_probe = false;
    tweak(&mut config);
    let docker = (config.provisioner == molecule_server::config::ProvisionerChoice::Docker)
        .then(|| DockerSweep(molecule_server::provisioning::instance_label(&config)));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = Server::start(config, listener)
        .await
        .expect("server starts");
    let client = Client::new(server.url());
    TestServer {
        server,
        client,
        _dir: Some(dir),
        _docker: docker,
        store: Default::default(),
    }
}

/// A server started on an existing database, and its own data directory
/// (removed when it is dropped).
pub struct Replica {
    pub server: RunningServer,
    _dir: TempDir,
}

impl Replica {
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.server.shutdown().await
    }
}

/// Start a development-mode server on an existing database (a second
/// replica, or a restart after downtime).
pub async fn start_on(database: Database, tweak: impl FnOnce(&mut Config)) -> Replica {
    try_start_on(database, tweak).await.expect("server starts")
}

/// [`start_on`], returning why the server refused to start.
pub async fn try_start_on(
    database: Database,
    tweak: impl FnOnce(&mut Config),
) -> anyhow::Result<Replica> {
    let dir = TempDir::default();
    let mut config = Config::for_tests(database);
    config.data_dir = dir.0.clone();
    config.a2a_probe = false;
    tweak(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = Server::start(config, listener).await?;
    Ok(Replica { server, _dir: dir })
}

/// Any request; the status and the JSON body (`Null` when empty or not JSON).
/// `admin` as workspace `id`, with a token minted by development's
/// test-token route (the token its agent holds stays valid).
pub async fn minted(admin: &Client, id: Uuid) -> Client {
    let (s, minted) = call(
        admin,
        molecule_client::Method::GET,
        &format!("/admin/workspaces/{id}/test-token"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{minted}");
    admin
        .clone()
        .with_workspace_id(Some(id))
        .with_token(minted["auth_token"].as_str().map(str::to_string))
}

pub async fn call(
    client: &Client,
    method: molecule_client::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let r = client
        .request(method, path, body.as_ref())
        .await
        .expect("request sent");
    (r.status, r.json().unwrap_or(serde_json::Value::Null))
}

/// The admin token of production-mode test servers.
pub const TEST_ADMIN_TOKEN: &str = "test-admin-token-3f9a1c0e7b2d4a6f8e1c5a7d";

/// Production mode, closed, with [`TEST_ADMIN_TOKEN`] (a `start_with` tweak).
pub fn production(c: &mut Config) {
    c.mode = molecule_server::config::Mode::Production;
    c.admin_token = Some(TEST_ADMIN_TOKEN.into());
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

/// The database of `server`, opened beside it as an operator's tools would:
/// tests read and stage rows through it, never through the server's own
/// handles.
pub async fn store_of(server: &RunningServer) -> std::sync::Arc<dyn molecule_store::Store> {
    molecule_store::open(&server.app.config().database.store_url())
        .await
        .expect("open the test database")
}

impl TestServer {
    /// This server's database (see [`store_of`]).
    pub async fn store(&self) -> std::sync::Arc<dyn molecule_store::Store> {
        self.store
            .get_or_init(|| store_of(&self.server))
            .await
            .clone()
    }

    /// The client with the admin token.
    pub fn admin(&self) -> Client {
        self.client
            .clone()
            .with_token(Some(TEST_ADMIN_TOKEN.into()))
    }

    /// Create a root (or child) workspace through the API.
    pub async fn create(&self, name: &str, parent: Option<Uuid>) -> Uuid {
        let req = CreateWorkspace {
            name: name.into(),
            parent_id: parent,
            ..Default::default()
        };
        self.client
            .create_workspace(&req)
            .await
            .expect("create workspace")
            .id
    }

    /// Register `id` like an agent would; returns the issued token.
    pub async fn register(&self, id: Uuid) -> String {
        let req = RegisterRequest {
            id: id.to_string(),
            url: format!("http://agent-{}.test:8000", &id.to_string()[..8]),
            agent_card: json!({"name": format!("agent {id}")}),
        };
        self.client
            .register(&req)
            .await
            .expect("register")
            .auth_token
            .expect("first registration issues a token")
    }

    /// A client with a second token of `id` (development's test-token
    /// route), beside the one its agent holds (which stays valid).
    pub async fn minted(&self, id: Uuid) -> Client {
        minted(&self.client, id).await
    }

    pub fn as_workspace(&self, id: Uuid, token: &str) -> Client {
        self.client
            .clone()
            .with_workspace_id(Some(id))
            .with_token(Some(token.to_string()))
    }

    pub async fn heartbeat(&self, id: Uuid, token: &str, hb: Heartbeat) {
        let hb = Heartbeat {
            workspace_id: id.to_string(),
            ..hb
        };
        self.as_workspace(id, token)
            .heartbeat(&hb)
            .await
            .expect("heartbeat");
    }
}

/// Poll `check` until it returns `Some` or `within` passes.
/// Wake the background task `name` and wait until it has completed `n`
/// more activations than it had, so a test can assert that something did
/// *not* happen after the task really ran (instead of sleeping and hoping
/// it ran meanwhile).
pub async fn ticks(app: &molecule_server::app::App, name: &str, n: u64) {
    let count = || app.tasks().snapshot().get(name).map(|s| s.ticks);
    let start = count().unwrap_or_else(|| panic!("no background task named {name}"));
    for i in 1..=n {
        app.tasks().activate(name);
        eventually(Duration::from_secs(10), || async {
            (count().unwrap_or(0) >= start + i).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("{name} did not complete activation {i} of {n}"));
    }
}

pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
