//! Domain services: the only code that touches the store (and, later, the
//! provisioner). Handlers in `http/` call these methods and convert the
//! results to wire views; background tasks call them too.

pub mod a2a;
pub mod activity;
pub mod auth;
pub mod channels;
pub mod cluster;
pub mod content;
pub mod delegation;
pub mod events;
pub mod outbound;
pub mod resources;
pub mod supervision;
pub mod validation;
pub mod webhooks;
pub mod workspaces;

use chrono::{DateTime, Utc};
use molecule_provisioner::Provisioner;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use uuid::Uuid;

use molecule_store::Store;

use crate::background::TaskRegistry;
use crate::background::jobs::Jobs;
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use auth::TokenCache;
use auth::access::Hierarchy;
use events::EventBus;
use supervision::governor::Governor;
use supervision::liveness::{HeartbeatBuffer, HotState, Liveness, UrlCache};
use workspaces::lifecycle::RestartQueue;

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
    config: Arc<Config>,
    store: Arc<dyn Store>,
    events: EventBus,
    /// The other replicas on the database (PostgreSQL), if any.
    cluster: cluster::Cluster,
    /// Activity rows waiting for the batched writer.
    activity: activity::ActivityQueue,
    /// Each workspace's activity write budget.
    activity_budget: activity::WriteBudget,
    hierarchy: Hierarchy,
    tokens: TokenCache,
    liveness: Liveness,
    heartbeats: HeartbeatBuffer,
    hot: HotState,
    urls: UrlCache,
    /// A2A proxy targets, dropped on every status write.
    targets: a2a::TargetCache,
    metrics: Arc<Metrics>,
    tasks: TaskRegistry,
    provisioner: Option<Arc<dyn Provisioner>>,
    governor: Arc<Mutex<Governor>>,
    restart_queue: RestartQueue,
    /// Per workspace, how many times a start was superseded (an operator
    /// restart): a start that finds its epoch changed drops its result.
    provision_epochs: Mutex<HashMap<Uuid, u64>>,
    /// Per workspace, held while a start writes its result and while a
    /// restart supersedes it, so the two never interleave.
    start_gates: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    listen_addrs: Arc<Mutex<ListenAddrs>>,
    restart_contexts: workspaces::restart_context::RestartContexts,
    /// Runtime starts in flight in this process, one per workspace.
    provision_jobs: Jobs<Uuid>,
    /// Outbound HTTP of the A2A proxy: pooled keep-alive connections, no
    /// global timeout (each call carries its own deadline).
    a2a_http: a2a::Upstream,
    /// A2A conformance probes waiting for an address, and their limit.
    probes: a2a::Probes,
    /// Spans of the proxy, delegation, the scheduler and provisioning
    /// (exported when `OTEL_*` says where).
    telemetry: molecule_telemetry::Telemetry,
    /// Where URLs someone supplied may lead (also used by `a2a_http`).
    outbound: outbound::OutboundPolicy,
    /// Seals and opens secret values with `SECRETS_ENCRYPTION_KEY`.
    secret_box: resources::secret_box::SecretBox,
    /// The scheduler's fire jobs in this process.
    cron_jobs: Jobs<resources::scheduler::FireKey>,
    /// Delegated calls in flight in this process.
    delegation_jobs: Jobs<delegation::DelegationKey>,
    /// Channel pollers and the messages being answered.
    channels: channels::ChannelState,
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
        let a2a_http = a2a::Upstream::new(&config.agent_ca_certs, outbound.clone());
        let cluster = cluster::Cluster::default();
        Self(Arc::new(AppInner {
            events: EventBus::new(store.clone(), cluster.clone()),
            cluster,
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
            provision_epochs: Mutex::new(HashMap::new()),
            start_gates: Mutex::new(HashMap::new()),
            listen_addrs,
            restart_contexts: Default::default(),
            provision_jobs: Jobs::new("provisioning", workspaces::lifecycle::PARALLEL_STARTS),
            a2a_http: a2a_http.clone(),
            probes: a2a::Probes::default(),
            telemetry: match &config.otel {
                Some(settings) => molecule_telemetry::Telemetry::new(
                    settings.clone(),
                    std::sync::Arc::new(a2a::otlp::OtlpTransport(a2a_http)),
                ),
                None => molecule_telemetry::Telemetry::disabled(),
            },
            outbound,
            secret_box: resources::secret_box::SecretBox::new(config.secrets_key.clone()),
            cron_jobs: Jobs::new("schedule fire", resources::scheduler::PARALLEL_FIRES),
            delegation_jobs: Jobs::new("delegation", delegation::PARALLEL_DELEGATIONS),
            channels: Default::default(),
            provisioner,
            started_at: config.clock.now(),
            shutdown,
            config,
            store,
        }))
    }

    /// Called after every status write: the in-memory view is re-read.
    pub fn status_written(&self, id: Uuid) {
        self.hot.invalidate(id);
        self.targets.invalidate(id);
        self.cluster.status_changed(id, self.now());
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    // ---- what the outer layers (http/, background/, server) may reach ----
    // The store, the provisioner and the caches stay inside `app/`: every
    // read and write outside goes through a method that states its rule.

    /// Where the server listens, once its listeners are bound.
    pub fn listen_addrs(&self) -> ListenAddrs {
        self.listen_addrs
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    /// Bytes queued for the activity writer now, at the peak, and the bound
    /// both stay under.
    pub fn activity_queue_bytes(&self) -> (usize, usize, usize) {
        (
            self.activity.bytes(),
            self.activity.peak_bytes(),
            self.activity.max_bytes(),
        )
    }

    /// Record and broadcast an event.
    pub async fn emit(&self, event: molecule_types::Event) {
        self.events.emit(event).await;
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The time of day, from the configured clock (`crate::clock`).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.config.clock.now()
    }

    /// This server's metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// This server's background task registry.
    pub fn tasks(&self) -> &TaskRegistry {
        &self.tasks
    }

    /// Whether this replica runs the singleton task `name` now
    /// (`Store::lead`). A database that cannot say means "not now":
    /// standing by is safe, two replicas acting at once is not.
    pub async fn lead(&self, name: &str) -> bool {
        match self.store.lead(name).await {
            Ok(lead) => lead,
            Err(e) => {
                tracing::warn!(task = name, error = %e, "leadership check failed; standing by");
                false
            }
        }
    }

    /// Give up this replica's leads (orderly shutdown).
    pub async fn resign(&self) {
        self.cluster.leave().await;
        self.store.resign().await;
    }

    /// A live feed of every event emitted from now on (the caller filters
    /// by audience with [`App::event_visible_to`]).
    pub fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<events::Published> {
        self.events.subscribe()
    }

    /// `(database backend, provisioner backend)`, for the start-up line.
    pub fn backends(&self) -> (&'static str, &'static str) {
        let provisioner = self.provisioner.as_ref().map_or("none", |p| p.kind());
        (self.store.backend(), provisioner)
    }

    /// The address the provisioner wants the agent listener on, if any.
    pub fn provisioner_listen_ip(&self) -> Option<std::net::IpAddr> {
        self.provisioner
            .as_ref()
            .and_then(|p| p.platform_listen_ip())
    }

    /// Record where the server listens (the outbound policy refuses calls
    /// back into the platform through these).
    pub fn set_listen_addrs(
        &self,
        main: std::net::SocketAddr,
        gateway: Option<std::net::SocketAddr>,
    ) {
        if let Ok(mut a) = self.listen_addrs.lock() {
            a.main = Some(main);
            a.gateway = gateway;
        }
    }

    /// Load what the platform keeps in memory from the database: the
    /// hierarchy, then liveness deadlines.
    pub async fn warm(&self) -> AppResult<()> {
        self.hierarchy
            .warm()
            .await
            .map_err(AppError::internal("cannot load the workspace hierarchy"))?;
        self.seed_liveness().await
    }

    /// Close the proxy's idle upstream connections that are too old or
    /// that their agent closed.
    pub fn close_idle_upstreams(&self) {
        self.a2a_http.close_idle();
    }

    /// `/metrics` in the Prometheus text format: the registry plus the
    /// gauges sampled at scrape time.
    pub fn metrics_text(&self) -> String {
        use crate::metrics::Sample;
        self.metrics.render(&[
            Sample {
                name: "molecule_a2a_upstream_connections_opened_total",
                kind: "counter",
                value: self.a2a_http.connections_opened() as f64,
            },
            Sample {
                name: "molecule_a2a_upstream_connections_idle",
                kind: "gauge",
                value: self.a2a_http.idle_connections() as f64,
            },
            Sample {
                name: "molecule_activity_queue_bytes",
                kind: "gauge",
                value: self.activity.bytes() as f64,
            },
            Sample {
                name: "molecule_activity_queue_peak_bytes",
                kind: "gauge",
                value: self.activity.peak_bytes() as f64,
            },
            Sample {
                name: "molecule_activity_queue_max_bytes",
                kind: "gauge",
                value: self.activity.max_bytes() as f64,
            },
        ])
    }

    /// Turns true when the server is shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }
}
