//! Booting and stopping the platform. [`Server::start`] is the only way to
//! run it: `main` and the tests both bind a listener first and hand it over.

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::app::workspaces::lifecycle::PROVISIONER_TASK;
use crate::background::{self, tasks};
use crate::config::{Config, Database, Mode};
use crate::http::{self, Surface, host::HostPolicy, middleware::RateLimiter};
use crate::listener::{self, Caps};

pub struct Server;

/// A running platform: its address, its context, and the means to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub app: App,
    shutdown: watch::Sender<bool>,
    serving: Vec<JoinHandle<std::io::Result<()>>>,
    tasks: Vec<JoinHandle<()>>,
    /// The bus to the other replicas (PostgreSQL): sender and listener.
    cluster: Vec<JoinHandle<()>>,
    /// SQLite: the lock that keeps a second process off the file.
    _sole: Option<std::fs::File>,
}

impl Server {
    /// Open the store (migrating it), choose the runtime backend, start the
    /// background tasks and serve HTTP on `listener` (plus the container
    /// gateway listener, when there is one) until [`RunningServer::shutdown`].
    pub async fn start(mut config: Config, listener: TcpListener) -> anyhow::Result<RunningServer> {
        if let Database::Sqlite(path) = &config.database
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        }
        let generated_key = resolve_secrets_key(&mut config)?;
        let sole = match &config.database {
            crate::config::Database::Sqlite(path) => Some(lock_sqlite(path)?),
            crate::config::Database::Postgres(_) => None,
        };
        let store = molecule_store::open(&config.database.store_url())
            .await
            .context("cannot open the database")?;
        let provisioner = crate::provisioning::select(&config).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let app = App::new(Arc::new(config), store, provisioner, shutdown_rx.clone());
        app.warm()
            .await
            .map_err(|e| anyhow::anyhow!("cannot load the platform's state: {e}"))?;
        let reaped = app
            .reap_orphans()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reap orphaned runtimes: {e}"))?;
        if reaped > 0 {
            tracing::info!(reaped, "removed runtimes of deleted workspaces");
        }
        let cluster = app
            .join_cluster()
            .await?
            .into_iter()
            .map(tokio::spawn)
            .collect();

        let addr = listener.local_addr()?;
        // Containers reach the platform through an extra listener on their
        // network's gateway: host-local, so the platform stays off the
        // network. It serves only the agent routes.
        let agent_ip = app
            .config()
            .agent_listen_ip
            .or_else(|| app.provisioner_listen_ip());
        let gateway = match agent_ip {
            Some(ip) => {
                let port = if app.config().port != 0 {
                    addr.port()
                } else {
                    0
                };
                let gw = TcpListener::bind((ip, port))
                    .await
                    .with_context(|| format!("cannot listen for agents on {ip}"))?;
                Some(gw)
            }
            None => None,
        };
        app.set_listen_addrs(addr, gateway.as_ref().and_then(|g| g.local_addr().ok()));

        if let Some((path, created)) = generated_key {
            tracing::info!(
                key_file = %path.display(),
                created,
                "secrets are encrypted with the key file in the data directory (SECRETS_ENCRYPTION_KEY \
                 is not set); back it up with the database, or set SECRETS_ENCRYPTION_KEY[_FILE]"
            );
        }
        let limiter = Arc::new(RateLimiter::new(app.config().rate_limit));
        let task_list = tasks::all(&app, limiter.clone());
        let tasks = task_list
            .into_iter()
            .map(|t| background::spawn(app.clone(), t, shutdown_rx.clone()))
            .collect();

        let global = http::middleware::Global {
            app: app.clone(),
            limiter,
            hosts: Arc::new(HostPolicy::new(app.config(), agent_ip)),
        };
        let limits = app.config().connections;
        // One set of caps for both listeners: they share the descriptors.
        let caps = Caps::new(
            limits.max_connections,
            limits.max_connections_per_ip,
            app.metrics().clone(),
        );
        let mut serving = vec![tokio::spawn(listener::serve(
            listener,
            http::router(Surface::Full, global.clone()),
            caps.clone(),
            limits,
            shutdown_rx.clone(),
        ))];
        if let Some(gw) = gateway {
            serving.push(tokio::spawn(listener::serve(
                gw,
                http::router(Surface::Agent, global),
                caps,
                limits,
                shutdown_rx,
            )));
        }
        let (database, provisioner) = app.backends();
        tracing::info!(%addr, database, provisioner, "molecule platform started");
        app.tasks().activate(PROVISIONER_TASK);
        Ok(RunningServer {
            addr,
            app,
            shutdown,
            serving,
            tasks,
            cluster,
            _sole: sole,
        })
    }
}

/// SQLite is one process's database: a second `molecule serve` on the same
/// file is refused (several replicas need PostgreSQL). The lock is the
/// process's: it goes when the process ends, however it ends.
fn lock_sqlite(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another molecule process already serves {}: SQLite is single-process \
             (run several replicas on one PostgreSQL database, DATABASE_URL=postgres://…)",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
        }
    }
}

/// The file holding the generated development key, in the data directory.
pub const SECRETS_KEY_FILE: &str = "secrets.key";

/// Development without a configured key: use `<data dir>/secrets.key`,
/// creating it (random, 0600) on first start, so secrets are never stored
/// in plain text. Returns the file and whether it was created now.
fn resolve_secrets_key(config: &mut Config) -> anyhow::Result<Option<(std::path::PathBuf, bool)>> {
    if config.secrets_key.is_some() || config.mode != Mode::Development {
        return Ok(None);
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let path = config.data_dir.join(SECRETS_KEY_FILE);
    let (key, created) =
        crate::config::security::load_or_create_key_file(&path).map_err(anyhow::Error::msg)?;
    config.secrets_key = Some(key);
    Ok(Some((path, created)))
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting requests, finish in-flight ones, stop the tasks and
    /// write what is still buffered. Workspace runtimes keep running (Docker)
    /// so a restarted platform adopts them.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let mut result = Ok(());
        for s in self.serving {
            match s.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(anyhow::anyhow!("server error: {e}")),
                Err(e) => result = Err(anyhow::anyhow!("server task failed: {e}")),
            }
        }
        for t in self.tasks {
            let _ = t.await;
        }
        if let Err(e) = self.app.flush_heartbeats().await {
            tracing::error!(error = %e, "final heartbeat flush failed");
        }
        if let Err(e) = self.app.flush_activity().await {
            tracing::error!(error = %e, "final activity flush failed");
        }
        // Another replica takes over the singleton tasks at once.
        self.app.resign().await;
        for c in self.cluster {
            c.abort();
        }
        result
    }
}
