//! Server configuration: read from flags and the reference's environment
//! names, validated once at start-up with messages that say what to change.
//! Nothing else in the server reads the environment.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `MOLECULE_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Admin routes open, test tokens on; only allowed on a loopback bind.
    Development,
    /// Closed by default: admin token required, test tokens off.
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A Langfuse-compatible trace API.
#[derive(Debug, Clone, PartialEq)]
pub struct Langfuse {
    /// `http(s)://host[:port]`, no trailing slash.
    pub host: String,
    pub public_key: String,
    pub secret_key: Redacted,
}

/// A secret setting: usable as a `&str`, never shown by `Debug` (a config
/// printed in a log or a panic must not carry the admin token).
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl std::ops::Deref for Redacted {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Redacted {
    fn from(s: &str) -> Self {
        Redacted(s.to_string())
    }
}

impl From<String> for Redacted {
    fn from(s: String) -> Self {
        Redacted(s)
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// Embedded SQLite file.
    Sqlite(PathBuf),
    /// `postgres://…`
    Postgres(String),
}

/// `Debug` without the password of a PostgreSQL URL.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Self::Postgres(u) => f
                .debug_tuple("Postgres")
                .field(&without_password(u))
                .finish(),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:REDACTED@host/db`.
pub fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable url>".to_string(),
    }
}

impl Database {
    /// The URL handed to `molecule_store::open`.
    pub fn store_url(&self) -> String {
        match self {
            Self::Sqlite(p) => format!("sqlite:{}", p.display()),
            Self::Postgres(u) => u.clone(),
        }
    }
}

/// `MOLECULE_PROVISIONER`: which backend runs workspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionerChoice {
    /// Docker when an engine answers, else local processes when the agent
    /// program is found, else none.
    Auto,
    Docker,
    Local,
    /// Workspaces wait for agents that register by themselves.
    None,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub database: Database,
    pub data_dir: PathBuf,
    pub mode: Mode,
    pub admin_token: Option<Redacted>,
    pub cors_origins: Vec<String>,
    /// Requests per minute per client IP.
    pub rate_limit: u32,
    pub platform_url: Option<String>,
    /// `MOLECULE_ORG_ID`: enables the tenant guard.
    pub org_id: Option<String>,
    /// Heartbeat TTL after which a silent workspace goes `offline`.
    pub liveness_ttl: Duration,
    /// How often the liveness task looks for expired deadlines.
    pub liveness_check_every: Duration,
    /// `REMOTE_LIVENESS_STALE_AFTER`: staleness of `external` workspaces.
    pub remote_stale_after: Duration,
    /// How often coalesced heartbeat statistics are written.
    pub heartbeat_flush_every: Duration,
    pub log_format: LogFormat,
    pub provisioner: ProvisionerChoice,
    /// Image every runtime maps to unless `runtime_images` says otherwise.
    pub agent_image: String,
    /// `MOLECULE_RUNTIME_IMAGES=runtime=image,…`
    pub runtime_images: std::collections::BTreeMap<String, String>,
    /// The `molecule-agent` program for the local backend.
    pub agent_program: Option<PathBuf>,
    /// No registration within this long after the container started → `failed`.
    pub provision_timeout: Duration,
    /// `ACTIVITY_RETENTION_DAYS`: activity rows older than this are deleted.
    pub activity_retention: Duration,
    /// `ACTIVITY_CLEANUP_INTERVAL_HOURS`: how often retention runs.
    pub activity_cleanup_every: Duration,
    /// Wait before a delegation's one retry after a transient failure (8 s).
    pub delegation_retry_after: Duration,
    /// `MOLECULE_A2A_ACTIVITY` (`on` | `off`): write an `a2a_receive`
    /// activity row for every proxied call (on by default).
    pub a2a_activity: bool,
    /// `MOLECULE_A2A_PROBE` (`on` | `off`): probe an agent's A2A
    /// conformance when it registers (on by default).
    pub a2a_probe: bool,
    /// `LANGFUSE_HOST`, `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY`: where
    /// `GET /workspaces/:id/traces` reads traces (all three, or none).
    pub langfuse: Option<Langfuse>,
    /// `GITHUB_WEBHOOK_SECRET`: the HMAC key GitHub signs its deliveries
    /// with; unset, `POST /webhooks/github` answers 503.
    pub github_webhook_secret: Option<Redacted>,
    /// `TELEGRAM_API_URL`: the Bot API (`https://api.telegram.org`).
    pub telegram_api_url: String,
    /// `SLACK_API_URL`: the Web API (`https://slack.com/api`).
    pub slack_api_url: String,
    /// The standard `OTEL_*` variables: where spans are exported (none set:
    /// nowhere).
    pub otel: Option<molecule_telemetry::Settings>,
    /// `MOLECULE_PLUGINS_DIR`: the plugin registry (default
    /// `<templates>/../plugins`).
    pub plugins_dir: Option<PathBuf>,
    /// `MOLECULE_PLUGINS_GIT_BASE`: where `github://owner/repo` is cloned
    /// from (`https://github.com`).
    pub plugins_git_base: String,
    /// `PLUGIN_INSTALL_MAX_DIR_BYTES`: the most bytes a staged plugin may
    /// hold (100 MiB).
    pub plugin_max_bytes: u64,
    /// `PLUGIN_INSTALL_FETCH_TIMEOUT` (seconds): how long staging a plugin
    /// may take (5 min).
    pub plugin_fetch_timeout: Duration,
    /// A terminal with no input for this long is closed (30 min; not an
    /// environment setting).
    pub terminal_idle: Duration,
    /// `MOLECULE_ACTIVITY_QUEUE_BYTES`: the most bytes of activity rows
    /// held in memory waiting for the writer (64 MiB).
    pub activity_queue_bytes: usize,
    /// `MOLECULE_ACTIVITY_BUDGET_BYTES` / `_ROWS` / `_WINDOW_SECONDS`: what
    /// one workspace may write to its activity log per window.
    pub activity_budget: crate::app::activity::BudgetConfig,
    /// How often running workspaces are inspected.
    pub health_sweep_every: Duration,
    /// Heartbeat interval handed to provisioned agents.
    pub agent_heartbeat_every: Duration,
    /// Extra environment for every provisioned workspace (tests, operators).
    pub workspace_env: Vec<(String, String)>,
    pub governor: crate::app::supervision::governor::GovernorConfig,
    /// Docker endpoint; `None` = `DOCKER_HOST` or the local socket.
    pub docker_host: Option<String>,
    /// Deadline of every single Docker API call.
    pub docker_call_timeout: Duration,
    /// `SECRETS_ENCRYPTION_KEY`; `None` = secrets stored as plaintext
    /// (development only).
    pub secrets_key: Option<crate::app::resources::secret_box::SecretsKey>,
    /// How often the scheduler looks for due schedules.
    pub scheduler_every: Duration,
    /// `MOLECULE_APPROVAL_TTL_SECONDS`: pending approvals older than this are
    /// denied by `auto-expired`.
    pub approval_ttl: Duration,
    /// How often the approval expiry task runs.
    pub approval_expiry_every: Duration,
    /// `MOLECULE_AGENT_CA_FILE`: extra trust roots (PEM) for `https://`
    /// agent URLs, next to the Mozilla roots.
    pub agent_ca_certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// `MOLECULE_WORKSPACE_DIR_ROOTS`: the directories a `workspace_dir`
    /// must lie in (development default: `$HOME`; production: none).
    pub workspace_dir_roots: Vec<PathBuf>,
    /// Caps and timeouts of client connections (both listeners).
    pub connections: ConnectionLimits,
    /// `MOLECULE_ALLOWED_HOSTS`: `Host` names accepted besides loopback
    /// addresses and `localhost` where the Host check applies (development
    /// mode, or whenever this list is set). An entry without a port matches
    /// any port.
    pub allowed_hosts: Vec<HostName>,
    /// Serve the agent-only router on this address too (port 0 = any; the
    /// main port when it is fixed). The Docker backend's network gateway is
    /// used when this is unset; tests set it to 127.0.0.2 to run that
    /// listener without Docker. Not read from the environment.
    pub agent_listen_ip: Option<IpAddr>,
    /// `MOLECULE_OUTBOUND_ALLOW`: networks URLs someone supplied may reach
    /// although the mode's outbound policy closes them (`app/outbound`).
    pub outbound_allow: Vec<crate::app::outbound::Network>,
    /// Memory and CPU of Docker workspaces per tier (`TIER*`).
    pub tier_limits: molecule_provisioner::docker::TierLimits,
    /// The wall clock (`crate::clock`): the system clock; tests use an
    /// adjustable one to move time forward. Not read from the environment.
    pub clock: crate::clock::Clock,
    /// `MOLECULE_TEMPLATES_DIR` (or `CONFIGS_DIR`): workspace templates, one
    /// directory each with a `config.yaml`. `None` = `<data dir>/templates`.
    pub templates_dir: Option<PathBuf>,
    /// `MOLECULE_ORG_TEMPLATES_DIR`: org templates, one directory each with
    /// an `org.yaml`. `None` = `<data dir>/org-templates`.
    pub org_templates_dir: Option<PathBuf>,
}

/// Limits on client connections, shared by every listener of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `MOLECULE_HTTP_HEADER_TIMEOUT_SECONDS`: a request head must be
    /// complete this long after its first byte (after accept, for the first
    /// request of a connection).
    pub header_read_timeout: Duration,
    /// `MOLECULE_HTTP_BODY_TIMEOUT_SECONDS`: a request body must be complete
    /// this long after its handler starts reading it. Responses are never
    /// timed (an A2A SSE relay may last minutes).
    pub body_read_timeout: Duration,
    /// `MOLECULE_HTTP_IDLE_TIMEOUT_SECONDS`: a keep-alive connection with no
    /// request in flight and no new request started is closed after this.
    pub idle_timeout: Duration,
    /// `MOLECULE_MAX_CONNECTIONS`: open client connections (WebSockets
    /// included) past which new ones are refused.
    pub max_connections: usize,
    /// `MOLECULE_MAX_CONNECTIONS_PER_IP`: the same, per client address.
    pub max_connections_per_ip: usize,
}

mod edge;
mod numbers;
mod raw;
pub mod security;
pub use edge::{Host, HostName};
pub use raw::{ConfigError, ENV_NAMES, RawConfig};

impl Config {
    /// Where workspace templates live.
    pub fn templates_dir(&self) -> PathBuf {
        self.templates_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("templates"))
    }

    /// The plugin registry: `MOLECULE_PLUGINS_DIR`, else `plugins` beside
    /// the templates directory.
    pub fn plugins_dir(&self) -> PathBuf {
        self.plugins_dir.clone().unwrap_or_else(|| {
            let templates = self.templates_dir();
            templates
                .parent()
                .map_or_else(|| self.data_dir.join("plugins"), |p| p.join("plugins"))
        })
    }

    /// Where org templates live.
    pub fn org_templates_dir(&self) -> PathBuf {
        self.org_templates_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("org-templates"))
    }

    /// The image (Docker) a runtime runs in.
    pub fn image_for(&self, runtime: &str) -> &str {
        self.runtime_images
            .get(runtime)
            .map(String::as_str)
            .unwrap_or(&self.agent_image)
    }

    /// A development configuration on an ephemeral SQLite file, for tests.
    pub fn for_tests(database: Database) -> Self {
        let mut c = RawConfig::default()
            .validate()
            .expect("default config is valid");
        c.database = database;
        c.port = 0;
        c.rate_limit = 1_000_000;
        c.liveness_check_every = std::time::Duration::from_millis(100);
        c.provisioner = ProvisionerChoice::None;
        c.scheduler_every = std::time::Duration::from_millis(100);
        c.workspace_dir_roots = vec![PathBuf::from("/home")];
        c
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
