//! Domain services: the only code that touches the store (and, later, the
//! provisioner). Handlers in `http/` call these methods and convert the
//! results to wire views; background tasks call them too.

pub mod access;
pub mod auth;
pub mod events;
pub mod liveness;
pub mod registry;
pub mod workspaces;

use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::watch;

use molecule_store::Store;
use uuid::Uuid;

use crate::background::TaskRegistry;
use crate::config::Config;
use crate::metrics::Metrics;
use access::Hierarchy;
use auth::TokenCache;
use events::EventBus;
use liveness::{HeartbeatBuffer, Liveness, UrlCache};

/// What happens when the platform concludes a workspace is gone. The
/// provisioner issue plugs the restart governor in here; until then the
/// platform only records the decision.
pub trait RestartHook: Send + Sync {
    /// Called after a workspace was marked `offline`, with the reason.
    fn workspace_offline(&self, id: Uuid, reason: &str);
}

/// The hook used when no container backend is configured.
pub struct NoRestarts;

impl RestartHook for NoRestarts {
    fn workspace_offline(&self, id: Uuid, reason: &str) {
        tracing::info!(workspace_id = %id, reason, "workspace offline; no container backend, so no restart is attempted");
    }
}

/// The context every handler and task receives. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub events: EventBus,
    pub hierarchy: Hierarchy,
    pub tokens: TokenCache,
    pub liveness: Liveness,
    pub heartbeats: HeartbeatBuffer,
    pub urls: UrlCache,
    pub metrics: Arc<Metrics>,
    pub tasks: TaskRegistry,
    pub restarts: Arc<dyn RestartHook>,
    started_at: DateTime<Utc>,
    shutdown: watch::Receiver<bool>,
}

impl App {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            events: EventBus::new(store.clone()),
            hierarchy: Hierarchy::new(store.clone()),
            tokens: TokenCache::default(),
            liveness: Liveness::default(),
            heartbeats: HeartbeatBuffer::default(),
            urls: UrlCache::default(),
            metrics: Arc::new(Metrics::default()),
            tasks: TaskRegistry::default(),
            restarts: Arc::new(NoRestarts),
            started_at: Utc::now(),
            shutdown,
            config,
            store,
        }
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// Turns true when the server is shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }
}
