//! The raw settings (flags and environment) and their validation into a
//! [`Config`]: every problem is collected and reported at once.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use molecule_provisioner::docker::TierLimits;

use super::numbers::{count, positive, seconds};
use super::{Config, Database, LogFormat, Mode, ProvisionerChoice, Redacted, security};

/// Environment names the server understands.
pub const ENV_NAMES: &[&str] = &[
    "PORT",
    "DATABASE_URL",
    "MOLECULE_DATA_DIR",
    "MOLECULE_BIND",
    "MOLECULE_ENV",
    "MOLECULE_ADMIN_TOKEN",
    "CORS_ORIGINS",
    "RATE_LIMIT",
    "PLATFORM_URL",
    "MOLECULE_ORG_ID",
    "MOLECULE_LIVENESS_TTL_SECONDS",
    "MOLECULE_AGENT_HEARTBEAT_SECONDS",
    "REMOTE_LIVENESS_STALE_AFTER",
    "MOLECULE_LOG_FORMAT",
    "MOLECULE_PROVISIONER",
    "MOLECULE_AGENT_IMAGE",
    "MOLECULE_RUNTIME_IMAGES",
    "MOLECULE_AGENT_BIN",
    "MOLECULE_PROVISION_TIMEOUT_SECONDS",
    "ACTIVITY_RETENTION_DAYS",
    "ACTIVITY_CLEANUP_INTERVAL_HOURS",
    "MOLECULE_A2A_ACTIVITY",
    "MOLECULE_A2A_PROBE",
    "MOLECULE_PLUGINS_DIR",
    "MOLECULE_PLUGINS_GIT_BASE",
    "PLUGIN_INSTALL_MAX_DIR_BYTES",
    "PLUGIN_INSTALL_FETCH_TIMEOUT",
    "LANGFUSE_HOST",
    "GITHUB_WEBHOOK_SECRET",
    "TELEGRAM_API_URL",
    "SLACK_API_URL",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "MOLECULE_ACTIVITY_QUEUE_BYTES",
    "MOLECULE_ACTIVITY_BUDGET_BYTES",
    "MOLECULE_ACTIVITY_BUDGET_ROWS",
    "MOLECULE_ACTIVITY_BUDGET_WINDOW_SECONDS",
    "SECRETS_ENCRYPTION_KEY",
    "MOLECULE_APPROVAL_TTL_SECONDS",
    "MOLECULE_AGENT_CA_FILE",
    "SECRETS_ENCRYPTION_KEY_FILE",
    "MOLECULE_WORKSPACE_DIR_ROOTS",
    "MOLECULE_HTTP_HEADER_TIMEOUT_SECONDS",
    "MOLECULE_HTTP_BODY_TIMEOUT_SECONDS",
    "MOLECULE_HTTP_IDLE_TIMEOUT_SECONDS",
    "MOLECULE_MAX_CONNECTIONS",
    "MOLECULE_MAX_CONNECTIONS_PER_IP",
    "MOLECULE_ALLOWED_HOSTS",
    "MOLECULE_OUTBOUND_ALLOW",
    "TIER2_MEMORY_MB",
    "TIER2_CPU_SHARES",
    "TIER3_MEMORY_MB",
    "TIER3_CPU_SHARES",
    "TIER4_MEMORY_MB",
    "TIER4_CPU_SHARES",
    "MOLECULE_TEMPLATES_DIR",
    "CONFIGS_DIR",
    "MOLECULE_ORG_TEMPLATES_DIR",
];

/// Raw settings before validation (flags win over environment).
#[derive(Clone, Default)]
pub struct RawConfig {
    pub port: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<String>,
    pub bind: Option<String>,
    pub env: Option<String>,
    pub admin_token: Option<String>,
    pub cors_origins: Option<String>,
    pub rate_limit: Option<String>,
    pub platform_url: Option<String>,
    pub org_id: Option<String>,
    pub liveness_ttl_seconds: Option<String>,
    pub agent_heartbeat_seconds: Option<String>,
    pub remote_stale_after: Option<String>,
    pub log_format: Option<String>,
    pub provisioner: Option<String>,
    pub agent_image: Option<String>,
    pub runtime_images: Option<String>,
    pub agent_program: Option<String>,
    pub provision_timeout: Option<String>,
    pub activity_retention_days: Option<String>,
    pub activity_cleanup_hours: Option<String>,
    pub a2a_activity: Option<String>,
    pub a2a_probe: Option<String>,
    pub plugins_dir: Option<String>,
    pub plugins_git_base: Option<String>,
    pub plugin_max_bytes: Option<String>,
    pub plugin_fetch_timeout: Option<String>,
    /// The `OTEL_*` variables that were set.
    pub otel: Vec<(String, String)>,
    pub langfuse_host: Option<String>,
    pub github_webhook_secret: Option<String>,
    pub telegram_api_url: Option<String>,
    pub slack_api_url: Option<String>,
    pub langfuse_public_key: Option<String>,
    pub langfuse_secret_key: Option<String>,
    pub activity_queue_bytes: Option<String>,
    pub activity_budget_bytes: Option<String>,
    pub activity_budget_rows: Option<String>,
    pub activity_budget_window: Option<String>,
    pub secrets_key: Option<String>,
    pub approval_ttl: Option<String>,
    pub agent_ca_file: Option<String>,
    pub secrets_key_file: Option<String>,
    pub workspace_dir_roots: Option<String>,
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<String>,
    pub max_connections_per_ip: Option<String>,
    pub allowed_hosts: Option<String>,
    pub outbound_allow: Option<String>,
    /// `TIER{2,3,4}_{MEMORY_MB,CPU_SHARES}` that are set, by name.
    pub tier_overrides: Vec<(String, String)>,
    /// `MOLECULE_TEMPLATES_DIR` (or the reference's `CONFIGS_DIR`).
    pub templates_dir: Option<String>,
    /// `MOLECULE_ORG_TEMPLATES_DIR`.
    pub org_templates_dir: Option<String>,
}

impl RawConfig {
    /// Read every setting from an environment lookup (`std::env::var` in
    /// `main`, a map in tests). Empty values count as unset.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        let g = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        Self {
            port: g("PORT"),
            database_url: g("DATABASE_URL"),
            data_dir: g("MOLECULE_DATA_DIR"),
            templates_dir: g("MOLECULE_TEMPLATES_DIR").or_else(|| g("CONFIGS_DIR")),
            org_templates_dir: g("MOLECULE_ORG_TEMPLATES_DIR"),
            bind: g("MOLECULE_BIND"),
            env: g("MOLECULE_ENV"),
            admin_token: g("MOLECULE_ADMIN_TOKEN"),
            cors_origins: g("CORS_ORIGINS"),
            rate_limit: g("RATE_LIMIT"),
            platform_url: g("PLATFORM_URL"),
            org_id: g("MOLECULE_ORG_ID"),
            liveness_ttl_seconds: g("MOLECULE_LIVENESS_TTL_SECONDS"),
            agent_heartbeat_seconds: g("MOLECULE_AGENT_HEARTBEAT_SECONDS"),
            remote_stale_after: g("REMOTE_LIVENESS_STALE_AFTER"),
            log_format: g("MOLECULE_LOG_FORMAT"),
            provisioner: g("MOLECULE_PROVISIONER"),
            agent_image: g("MOLECULE_AGENT_IMAGE"),
            runtime_images: g("MOLECULE_RUNTIME_IMAGES"),
            agent_program: g("MOLECULE_AGENT_BIN"),
            provision_timeout: g("MOLECULE_PROVISION_TIMEOUT_SECONDS"),
            activity_retention_days: g("ACTIVITY_RETENTION_DAYS"),
            activity_cleanup_hours: g("ACTIVITY_CLEANUP_INTERVAL_HOURS"),
            a2a_activity: g("MOLECULE_A2A_ACTIVITY"),
            a2a_probe: g("MOLECULE_A2A_PROBE"),
            plugins_dir: g("MOLECULE_PLUGINS_DIR"),
            plugins_git_base: g("MOLECULE_PLUGINS_GIT_BASE"),
            plugin_max_bytes: g("PLUGIN_INSTALL_MAX_DIR_BYTES"),
            plugin_fetch_timeout: g("PLUGIN_INSTALL_FETCH_TIMEOUT"),
            otel: molecule_telemetry::ENV_NAMES
                .iter()
                .filter_map(|k| g(k).map(|v| (k.to_string(), v)))
                .collect(),
            langfuse_host: g("LANGFUSE_HOST"),
            github_webhook_secret: g("GITHUB_WEBHOOK_SECRET"),
            telegram_api_url: g("TELEGRAM_API_URL"),
            slack_api_url: g("SLACK_API_URL"),
            langfuse_public_key: g("LANGFUSE_PUBLIC_KEY"),
            langfuse_secret_key: g("LANGFUSE_SECRET_KEY"),
            activity_queue_bytes: g("MOLECULE_ACTIVITY_QUEUE_BYTES"),
            activity_budget_bytes: g("MOLECULE_ACTIVITY_BUDGET_BYTES"),
            activity_budget_rows: g("MOLECULE_ACTIVITY_BUDGET_ROWS"),
            activity_budget_window: g("MOLECULE_ACTIVITY_BUDGET_WINDOW_SECONDS"),
            agent_ca_file: g("MOLECULE_AGENT_CA_FILE"),
            secrets_key: g("SECRETS_ENCRYPTION_KEY"),
            approval_ttl: g("MOLECULE_APPROVAL_TTL_SECONDS"),
            secrets_key_file: g("SECRETS_ENCRYPTION_KEY_FILE"),
            workspace_dir_roots: g("MOLECULE_WORKSPACE_DIR_ROOTS"),
            header_timeout: g("MOLECULE_HTTP_HEADER_TIMEOUT_SECONDS"),
            body_timeout: g("MOLECULE_HTTP_BODY_TIMEOUT_SECONDS"),
            idle_timeout: g("MOLECULE_HTTP_IDLE_TIMEOUT_SECONDS"),
            max_connections: g("MOLECULE_MAX_CONNECTIONS"),
            max_connections_per_ip: g("MOLECULE_MAX_CONNECTIONS_PER_IP"),
            allowed_hosts: g("MOLECULE_ALLOWED_HOSTS"),
            outbound_allow: g("MOLECULE_OUTBOUND_ALLOW"),
            tier_overrides: ENV_NAMES
                .iter()
                .filter(|k| k.starts_with("TIER"))
                .filter_map(|k| g(k).map(|v| (k.to_string(), v)))
                .collect(),
        }
    }

    /// Validate everything; the error lists every problem found.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let connections = self.connection_limits(&mut problems);
        let port = match self.port.as_deref().map(str::trim) {
            None => 8080,
            Some(p) => p.parse::<u16>().unwrap_or_else(|_| {
                problems.push(format!("PORT={p:?} is not a port number (0-65535)"));
                0
            }),
        };
        let bind = match self.bind.as_deref().map(str::trim) {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(b) => b.parse::<IpAddr>().unwrap_or_else(|_| {
                problems.push(format!(
                    "MOLECULE_BIND={b:?} is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)"
                ));
                IpAddr::from([127, 0, 0, 1])
            }),
        };
        let mode = match self.env.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
            None => Mode::Development,
            Some(m) if m == "development" || m == "dev" => Mode::Development,
            Some(m) if m == "production" || m == "prod" => Mode::Production,
            Some(m) => {
                problems.push(format!(
                    "MOLECULE_ENV={m:?} must be `development` or `production`"
                ));
                Mode::Development
            }
        };
        let data_dir = PathBuf::from(self.data_dir.as_deref().unwrap_or("./molecule-data"));
        let database = match self.database_url.as_deref().map(str::trim) {
            None => Database::Sqlite(data_dir.join("molecule.db")),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Database::Postgres(u.to_string())
            }
            Some(u) if u.starts_with("sqlite:") => Database::Sqlite(PathBuf::from(
                u.trim_start_matches("sqlite:").trim_start_matches("//"),
            )),
            Some(_) => {
                problems.push("DATABASE_URL must start with postgres:// (or be unset for the embedded SQLite)".to_string());
                Database::Sqlite(data_dir.join("molecule.db"))
            }
        };
        let admin_token = self.admin_token.map(|t| t.trim().to_string());
        if let Some(t) = &admin_token
            && let Err(problem) = security::check_admin_token(t)
        {
            problems.push(problem);
        }
        match mode {
            Mode::Production if admin_token.is_none() => problems.push(
                "MOLECULE_ENV=production requires MOLECULE_ADMIN_TOKEN (the credential for admin routes)".to_string(),
            ),
            Mode::Development if !bind.is_loopback() => problems.push(format!(
                "refusing to start open on {bind}: development mode leaves admin routes unauthenticated, so it only binds loopback. \
                 Use MOLECULE_BIND=127.0.0.1, or set MOLECULE_ENV=production with MOLECULE_ADMIN_TOKEN"
            )),
            _ => {}
        }
        let cors_origins = match &self.cors_origins {
            None => vec![
                "http://localhost:3000".to_string(),
                "http://localhost:3001".to_string(),
            ],
            Some(list) => list
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        };
        let rate_limit = match self.rate_limit.as_deref().map(str::trim) {
            None => 600,
            Some(r) => {
                match r.parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        problems.push(format!("RATE_LIMIT={r:?} must be a positive integer (requests per minute per IP)"));
                        600
                    }
                }
            }
        };
        let platform_url = self
            .platform_url
            .map(|u| u.trim().trim_end_matches('/').to_string());
        if let Some(u) = &platform_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            problems.push(format!(
                "PLATFORM_URL={u:?} must be an http:// or https:// URL"
            ));
        }
        let liveness_ttl = seconds(
            &self.liveness_ttl_seconds,
            "MOLECULE_LIVENESS_TTL_SECONDS",
            180,
            &mut problems,
        );
        let agent_heartbeat_every = seconds(
            &self.agent_heartbeat_seconds,
            "MOLECULE_AGENT_HEARTBEAT_SECONDS",
            30,
            &mut problems,
        );
        if agent_heartbeat_every >= liveness_ttl {
            problems.push(format!(
                "MOLECULE_AGENT_HEARTBEAT_SECONDS ({} s) must be shorter than MOLECULE_LIVENESS_TTL_SECONDS ({} s): \
                 every workspace would go offline between two heartbeats",
                agent_heartbeat_every.as_secs_f64(),
                liveness_ttl.as_secs_f64()
            ));
        }
        let remote_stale_after = seconds(
            &self.remote_stale_after,
            "REMOTE_LIVENESS_STALE_AFTER",
            90,
            &mut problems,
        );
        let log_format = match self.log_format.as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(f) => {
                problems.push(format!(
                    "MOLECULE_LOG_FORMAT={f:?} must be `text` or `json`"
                ));
                LogFormat::Text
            }
        };
        let provisioner = match self
            .provisioner
            .as_deref()
            .map(|s| s.trim().to_ascii_lowercase())
        {
            None => ProvisionerChoice::Auto,
            Some(p) => match p.as_str() {
                "auto" => ProvisionerChoice::Auto,
                "docker" => ProvisionerChoice::Docker,
                "local" => ProvisionerChoice::Local,
                "none" => ProvisionerChoice::None,
                _ => {
                    problems.push(format!(
                        "MOLECULE_PROVISIONER={p:?} must be auto, docker, local or none"
                    ));
                    ProvisionerChoice::Auto
                }
            },
        };
        let mut runtime_images = std::collections::BTreeMap::new();
        for pair in self
            .runtime_images
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match pair.split_once('=') {
                Some((r, i)) if !r.trim().is_empty() && !i.trim().is_empty() => {
                    runtime_images.insert(r.trim().to_string(), i.trim().to_string());
                }
                _ => problems.push(format!(
                    "MOLECULE_RUNTIME_IMAGES entry {pair:?} must be runtime=image"
                )),
            }
        }
        let a2a_activity = on_off(
            "MOLECULE_A2A_ACTIVITY",
            self.a2a_activity.as_deref(),
            &mut problems,
        );
        let api_url =
            |value: Option<String>, name: &str, default: &str, problems: &mut Vec<String>| {
                let url = value
                    .map(|v| v.trim().trim_end_matches('/').to_string())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| default.to_string());
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    problems.push(format!("{name}={url:?} must be an http(s):// URL"));
                }
                url
            };
        let telegram_api_url = api_url(
            self.telegram_api_url,
            "TELEGRAM_API_URL",
            "https://api.telegram.org",
            &mut problems,
        );
        let slack_api_url = api_url(
            self.slack_api_url,
            "SLACK_API_URL",
            "https://slack.com/api",
            &mut problems,
        );
        let langfuse = match (
            self.langfuse_host.as_deref().map(str::trim),
            self.langfuse_public_key,
            self.langfuse_secret_key,
        ) {
            (None, None, None) => None,
            (Some(host), Some(public_key), Some(secret_key))
                if host.starts_with("http://") || host.starts_with("https://") =>
            {
                Some(super::Langfuse {
                    host: host.trim_end_matches('/').to_string(),
                    public_key,
                    secret_key: Redacted::from(secret_key),
                })
            }
            (Some(host), Some(_), Some(_)) => {
                problems.push(format!("LANGFUSE_HOST={host:?} must be an http(s):// URL"));
                None
            }
            _ => {
                problems.push(
                    "LANGFUSE_HOST, LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY are set together"
                        .into(),
                );
                None
            }
        };
        let plugin_max_bytes = count(
            &self.plugin_max_bytes,
            "PLUGIN_INSTALL_MAX_DIR_BYTES",
            100 << 20,
            1,
            &mut problems,
        );
        let plugin_fetch_timeout = positive(
            &self.plugin_fetch_timeout,
            "PLUGIN_INSTALL_FETCH_TIMEOUT",
            "seconds",
            1.0,
            300.0,
            &mut problems,
        );
        let plugins_git_base = self
            .plugins_git_base
            .as_deref()
            .map(|b| b.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| "https://github.com".into());
        if !["https://", "http://", "file://"]
            .iter()
            .any(|s| plugins_git_base.starts_with(s))
        {
            problems.push(format!(
                "MOLECULE_PLUGINS_GIT_BASE={plugins_git_base:?} must be an https://, http:// or file:// URL"
            ));
        }
        let otel = match molecule_telemetry::Settings::from_env("molecule", |k| {
            self.otel
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        }) {
            Ok(settings) => settings,
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        let a2a_probe = on_off(
            "MOLECULE_A2A_PROBE",
            self.a2a_probe.as_deref(),
            &mut problems,
        );
        let activity_retention = positive(
            &self.activity_retention_days,
            "ACTIVITY_RETENTION_DAYS",
            "days",
            86_400.0,
            7.0,
            &mut problems,
        );
        let activity_cleanup_every = positive(
            &self.activity_cleanup_hours,
            "ACTIVITY_CLEANUP_INTERVAL_HOURS",
            "hours",
            3_600.0,
            6.0,
            &mut problems,
        );
        // A row is at most two capped bodies and a few capped texts, about
        // 0.55 MiB: a queue or a budget smaller than 1 MiB could refuse a
        // single row forever.
        let activity_queue_bytes = count(
            &self.activity_queue_bytes,
            "MOLECULE_ACTIVITY_QUEUE_BYTES",
            64 << 20,
            1 << 20,
            &mut problems,
        );
        let activity_budget = crate::app::activity::BudgetConfig {
            bytes: count(
                &self.activity_budget_bytes,
                "MOLECULE_ACTIVITY_BUDGET_BYTES",
                16 << 20,
                1 << 20,
                &mut problems,
            ),
            rows: count(
                &self.activity_budget_rows,
                "MOLECULE_ACTIVITY_BUDGET_ROWS",
                6_000,
                1,
                &mut problems,
            ),
            window: seconds(
                &self.activity_budget_window,
                "MOLECULE_ACTIVITY_BUDGET_WINDOW_SECONDS",
                60,
                &mut problems,
            ),
        };
        let provision_timeout = seconds(
            &self.provision_timeout,
            "MOLECULE_PROVISION_TIMEOUT_SECONDS",
            180,
            &mut problems,
        );
        let secrets_key = security::secrets_key(
            self.secrets_key.as_deref(),
            self.secrets_key_file.as_deref(),
            mode,
            &mut problems,
        );
        let workspace_dir_roots =
            security::workspace_dir_roots(self.workspace_dir_roots.as_deref(), mode, &mut problems);
        let approval_ttl = seconds(
            &self.approval_ttl,
            "MOLECULE_APPROVAL_TTL_SECONDS",
            600,
            &mut problems,
        );
        let agent_ca_certs = match self.agent_ca_file.as_deref() {
            Some(path) => read_ca_file(path.trim()).unwrap_or_else(|problem| {
                problems.push(problem);
                Vec::new()
            }),
            None => Vec::new(),
        };
        let allowed_hosts =
            super::edge::allowed_hosts(self.allowed_hosts.as_deref(), &mut problems);
        let outbound_allow =
            crate::app::outbound::Network::parse_list(self.outbound_allow.as_deref().unwrap_or(""))
                .unwrap_or_else(|bad| {
                    problems.extend(bad);
                    Vec::new()
                });
        let tier_limits = tier_limits(&self.tier_overrides, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(Config {
            bind,
            port,
            database,
            data_dir,
            mode,
            admin_token: admin_token.map(Redacted::from),
            cors_origins,
            rate_limit,
            platform_url,
            org_id: self.org_id.map(|s| s.trim().to_string()),
            liveness_ttl,
            liveness_check_every: (liveness_ttl / 12)
                .clamp(Duration::from_millis(50), Duration::from_secs(5)),
            remote_stale_after,
            heartbeat_flush_every: Duration::from_millis(200),
            log_format,
            provisioner,
            agent_image: self
                .agent_image
                .unwrap_or_else(|| format!("molecule/agent:{}", env!("CARGO_PKG_VERSION"))),
            runtime_images,
            agent_program: self.agent_program.map(PathBuf::from),
            provision_timeout,
            activity_retention,
            activity_cleanup_every,
            delegation_retry_after: Duration::from_secs(8),
            a2a_activity,
            a2a_probe,
            langfuse,
            github_webhook_secret: self
                .github_webhook_secret
                .filter(|s| !s.is_empty())
                .map(Redacted::from),
            telegram_api_url,
            slack_api_url,
            otel,
            plugins_dir: self.plugins_dir.as_deref().map(PathBuf::from),
            plugins_git_base,
            plugin_max_bytes,
            plugin_fetch_timeout,
            terminal_idle: crate::app::workspaces::terminal::TERMINAL_IDLE,
            activity_queue_bytes: activity_queue_bytes as usize,
            activity_budget,
            health_sweep_every: Duration::from_secs(15),
            agent_heartbeat_every,
            workspace_env: Vec::new(),
            governor: Default::default(),
            docker_host: None,
            docker_call_timeout: Duration::from_secs(10),
            secrets_key,
            scheduler_every: Duration::from_secs(30),
            approval_expiry_every: (approval_ttl / 20)
                .clamp(Duration::from_millis(50), Duration::from_secs(30)),
            approval_ttl,
            agent_ca_certs,
            workspace_dir_roots,
            connections,
            allowed_hosts,
            agent_listen_ip: None,
            outbound_allow,
            tier_limits,
            clock: crate::clock::Clock::system(),
            templates_dir: self.templates_dir.as_deref().map(PathBuf::from),
            org_templates_dir: self.org_templates_dir.as_deref().map(PathBuf::from),
        })
    }
}

/// The Docker backend's per-tier limits: defaults, overridden by
/// `TIER{2,3,4}_MEMORY_MB` / `TIER{2,3,4}_CPU_SHARES` (positive integers).
fn tier_limits(overrides: &[(String, String)], problems: &mut Vec<String>) -> TierLimits {
    let mut limits = TierLimits::default();
    for (tier, limit) in [
        (2, &mut limits.t2),
        (3, &mut limits.t3),
        (4, &mut limits.t4),
    ] {
        for (suffix, field) in [
            ("MEMORY_MB", &mut limit.memory_mb),
            ("CPU_SHARES", &mut limit.cpu_shares),
        ] {
            let name = format!("TIER{tier}_{suffix}");
            let raw = overrides
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone());
            let default = u64::try_from(*field).unwrap_or(1);
            let value = count(&raw, &name, default, 1, problems);
            *field = i64::try_from(value).unwrap_or(i64::MAX);
        }
    }
    limits
}

/// The certificates of a PEM file, at least one, each one rustls accepts
/// as a trust root.
fn read_ca_file(path: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let problem = |what: String| format!("MOLECULE_AGENT_CA_FILE={path:?}: {what}");
    let pem = std::fs::read(path).map_err(|e| problem(format!("cannot read it: {e}")))?;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(format!("not a PEM certificate bundle: {e}")))?;
    if certs.is_empty() {
        return Err(problem("holds no PEM certificate".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    let (_, refused) = roots.add_parsable_certificates(certs.iter().cloned());
    if refused > 0 {
        return Err(problem(format!(
            "{refused} of {} certificates are not usable trust roots",
            certs.len()
        )));
    }
    Ok(certs)
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// An `on` | `off` switch that is on when unset.
fn on_off(name: &str, value: Option<&str>, problems: &mut Vec<String>) -> bool {
    match value.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("on" | "true" | "1") => true,
        Some("off" | "false" | "0") => false,
        Some(v) => {
            problems.push(format!("{name}={v:?} must be `on` or `off`"));
            true
        }
    }
}
