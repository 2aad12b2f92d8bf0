//! Booting and stopping the platform. [`Server::start`] is the only way to
//! run it: `main` and the tests both bind a listener first and hand it over.

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::background::{self, tasks};
use crate::config::{Config, Database};
use crate::http::{self, middleware::RateLimiter};

pub struct Server;

/// A running platform: its address, its context, and the means to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub app: App,
    shutdown: watch::Sender<bool>,
    serving: JoinHandle<std::io::Result<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Open the store (migrating it), start the background tasks and serve
    /// HTTP on `listener` until [`RunningServer::shutdown`].
    pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<RunningServer> {
        if let Database::Sqlite(path) = &config.database
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        }
        let store = molecule_store::open(&config.database.store_url())
            .await
            .context("cannot open the database")?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let app = App::new(Arc::new(config), store, shutdown_rx.clone());
        app.hierarchy
            .warm()
            .await
            .context("cannot load the workspace hierarchy")?;
        app.seed_liveness()
            .await
            .map_err(|e| anyhow::anyhow!("cannot seed liveness: {e}"))?;

        let limiter = Arc::new(RateLimiter::new(app.config.rate_limit));
        let task_list: Vec<Arc<dyn background::Task>> = vec![
            Arc::new(tasks::LivenessTask {
                every: app.config.liveness_check_every,
            }),
            Arc::new(tasks::ExternalStalenessTask),
            Arc::new(tasks::HeartbeatFlushTask {
                every: app.config.heartbeat_flush_every,
            }),
            Arc::new(tasks::RateLimitGcTask {
                limiter: limiter.clone(),
            }),
        ];
        let tasks = task_list
            .into_iter()
            .map(|t| background::spawn(app.clone(), t, shutdown_rx.clone()))
            .collect();

        let addr = listener.local_addr()?;
        let router = http::router(app.clone(), limiter);
        let mut stop = shutdown_rx;
        let serving = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        });
        tracing::info!(%addr, backend = app.store.backend(), "molecule platform started");
        Ok(RunningServer {
            addr,
            app,
            shutdown,
            serving,
            tasks,
        })
    }
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting requests, finish in-flight ones, stop the tasks and
    /// write what is still buffered.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self.serving.await;
        for t in self.tasks {
            let _ = t.await;
        }
        if let Err(e) = self.app.flush_heartbeats().await {
            tracing::error!(error = %e, "final heartbeat flush failed");
        }
        served
            .context("server task failed")?
            .context("server error")?;
        Ok(())
    }
}
