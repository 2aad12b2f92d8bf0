//! Domain services: the only code that touches the store (and, later, the
//! provisioner). Handlers in `http/` call these methods and convert the
//! results to wire views; background tasks call them too.

pub mod a2a;
pub mod access;
pub mod activity;
pub mod approvals;
pub mod auth;
pub mod cron;
pub mod delegation;
pub mod events;
pub mod governor;
pub mod lifecycle;
pub mod liveness;
pub mod memories;
pub mod operator;
pub mod outbound;
pub mod registry;
pub mod restart_context;
pub mod scheduler;
pub mod schedules;
pub mod secret_box;
pub mod secrets;
pub mod supervision;
pub mod validation;
pub mod workspace_config;
pub mod workspaces;

use chrono::{DateTime, Utc};
use molecule_provisioner::Provisioner;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use uuid::Uuid;

use molecule_store::Store;

use crate::background::TaskRegistry;
use crate::background::jobs::Jobs;
use crate::config::Config;
use crate::metrics::Metrics;
use access::Hierarchy;
use auth::TokenCache;
use events::EventBus;
use governor::Governor;
use lifecycle::RestartQueue;
use liveness::{HeartbeatBuffer, HotState, Liveness, UrlCache};

/// Addresses the server listens on, known once the listeners are bound.
#[derive(Debug, Clone, Default)]
pub struct ListenAddrs {
    pub main: Option<std::net::SocketAddr>,
    /// The extra listener on the container network's gateway.
    pub gateway: Option<std::net::SocketAddr>,
}

/// The context every handler and task receives: one pointer, cheap to
/// clone (every middleware layer and every proxied call clones it).
#[derive(Clone)]
pub struct App(Arc<AppInner>);

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// What [`App`] points to.
pub struct AppInner {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub events: EventBus,
    /// Activity rows waiting for the batched writer.
    pub activity: activity::ActivityQueue,
    /// Each workspace's activity write budget.
    pub activity_budget: activity::WriteBudget,
    pub hierarchy: Hierarchy,
    pub tokens: TokenCache,
    pub liveness: Liveness,
    pub heartbeats: HeartbeatBuffer,
    pub hot: HotState,
    pub urls: UrlCache,
    /// A2A proxy targets, dropped on every status write.
    pub targets: a2a::TargetCache,
    pub metrics: Arc<Metrics>,
    pub tasks: TaskRegistry,
    pub provisioner: Option<Arc<dyn Provisioner>>,
    pub governor: Arc<Mutex<Governor>>,
    pub restart_queue: RestartQueue,
    pub listen_addrs: Arc<Mutex<ListenAddrs>>,
    pub restart_contexts: restart_context::RestartContexts,
    /// Runtime starts in flight in this process, one per workspace.
    pub provision_jobs: Jobs<Uuid>,
    /// Outbound HTTP of the A2A proxy: pooled keep-alive connections, no
    /// global timeout (each call carries its own deadline).
    pub a2a_http: a2a::Upstream,
    /// Where URLs someone supplied may lead (also used by `a2a_http`).
    pub outbound: outbound::OutboundPolicy,
    /// Seals and opens secret values with `SECRETS_ENCRYPTION_KEY`.
    pub secret_box: secret_box::SecretBox,
    /// The scheduler's fire jobs in this process.
    pub cron_jobs: Jobs<scheduler::FireKey>,
    /// Delegated calls in flight in this process.
    pub delegation_jobs: Jobs<delegation::DelegationKey>,
    started_at: DateTime<Utc>,
    shutdown: watch::Receiver<bool>,
}

impl App {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        provisioner: Option<Arc<dyn Provisioner>>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let listen_addrs: Arc<Mutex<ListenAddrs>> = Arc::default();
        let outbound = outbound::OutboundPolicy::new(
            config.mode,
            &config.outbound_allow,
            listen_addrs.clone(),
        );
        Self(Arc::new(AppInner {
            events: EventBus::new(store.clone()),
            hierarchy: Hierarchy::new(store.clone()),
            activity: activity::ActivityQueue::new(config.activity_queue_bytes),
            activity_budget: activity::WriteBudget::new(config.activity_budget),
            tokens: TokenCache::default(),
            liveness: Liveness::default(),
            heartbeats: HeartbeatBuffer::default(),
            hot: HotState::default(),
            urls: UrlCache::default(),
            targets: Default::default(),
            metrics: Arc::new(Metrics::default()),
            tasks: TaskRegistry::default(),
            governor: Arc::new(Mutex::new(Governor::new(config.governor.clone()))),
            restart_queue: RestartQueue::default(),
            listen_addrs,
            restart_contexts: Default::default(),
            provision_jobs: Jobs::new("provisioning", lifecycle::PARALLEL_STARTS),
            a2a_http: a2a::Upstream::new(&config.agent_ca_certs, outbound.clone()),
            outbound,
            secret_box: secret_box::SecretBox::new(config.secrets_key.clone()),
            cron_jobs: Jobs::new("schedule fire", scheduler::PARALLEL_FIRES),
            delegation_jobs: Jobs::new("delegation", delegation::PARALLEL_DELEGATIONS),
            provisioner,
            started_at: Utc::now(),
            shutdown,
            config,
            store,
        }))
    }

    /// Called after every status write: the in-memory view is re-read.
    pub fn status_written(&self, id: Uuid) {
        self.hot.invalidate(id);
        self.targets.invalidate(id);
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// Turns true when the server is shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }
}
