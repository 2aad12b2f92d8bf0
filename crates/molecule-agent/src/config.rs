//! The agent's configuration: environment variables first, then
//! `$MOLECULE_CONFIG_DIR/config.yaml` (parsed with serde-saphyr; its keys are
//! listed in `config_file.rs`), then defaults. Everything is validated here,
//! once, at start; the rest of the crate receives typed values.
//!
//! | variable | meaning (default) |
//! |---|---|
//! | `AGENT_HOST`, `AGENT_PORT` or `PORT` | listen address (`0.0.0.0`, `8000`) |
//! | `AGENT_URL` | URL advertised in the card and at registration (`http://$HOSTNAME:<bound port>`) |
//! | `AGENT_NAME`, `AGENT_DESCRIPTION` | card name and description |
//! | `PLATFORM_URL` | platform to register with; unset = standalone |
//! | `WORKSPACE_ID` | this workspace's id; required with `PLATFORM_URL` |
//! | `MOLECULE_WORKSPACE_TOKEN` | bearer presented to the platform |
//! | `MOLECULE_CONFIG_DIR` (or `WORKSPACE_CONFIG_PATH`) | config.yaml and `.auth_token` (`/configs`) |
//! | `HEARTBEAT_INTERVAL_SECONDS` | heartbeat period, fractions allowed (`30`) |
//! | `MOLECULE_EXECUTOR` | `echo`, `command` or `openai` (`echo`) |
//! | `ECHO_DELAY_MS` | echo: delay before each word (`0`) |
//! | `MOLECULE_COMMAND`, `MOLECULE_COMMAND_ARGS`, `MOLECULE_COMMAND_TIMEOUT_SECONDS` | command: program, whitespace-separated args, timeout (`60`) |
//! | `OPENAI_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_MODEL`, `OPENAI_SYSTEM_PROMPT`, `OPENAI_TIMEOUT_SECONDS` | openai: endpoint (`https://api.openai.com/v1`), key, model (required), system prompt, timeout (`300`) |
//! | `OPENAI_ASK_TOOL` | openai: offer the model an `ask_user` tool to ask the caller a question (`off`) |
//! | `SSL_CERT_FILE` | extra PEM roots for HTTPS (`tls` builds) |
//! | `RUST_LOG` | log filter, `target=level,…` (`info`) |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_*` | where spans go (OTLP/HTTP JSON); unset: nowhere |
//! | `MOLECULE_AGENT_EXIT_AT_START` | fault hook: exit with this code at once |
//!
//! The environment is read through a lookup function so tests never touch
//! the process environment. An empty variable counts as unset. A config.yaml
//! that is absent is fine; one that cannot be read or parsed is an error, so
//! a typo does not silently fall back to the echo executor. Secrets (the
//! OpenAI key, the workspace token) come only from the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::AgentError;
use crate::config_file::{FileConfig, SkillEntry};

/// Where config.yaml and the persisted token live unless told otherwise.
pub const DEFAULT_CONFIG_DIR: &str = "/configs";
pub const DEFAULT_PORT: u16 = 8000;
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MODEL_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_OPENAI_BASE: &str = "https://api.openai.com/v1";

/// Everything `Agent::start` needs besides its listener.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub name: String,
    pub description: String,
    /// The URL put in the card and sent at registration; when `None`,
    /// `http://<hostname>:<bound port>`.
    pub advertised_url: Option<String>,
    pub hostname: String,
    pub skills: Vec<Skill>,
    pub executor: ExecutorConfig,
    /// `None`: standalone, no registration or heartbeat.
    pub platform: Option<PlatformConfig>,
    /// Tasks remembered for `tasks/get`.
    pub task_capacity: usize,
    /// How long shutdown waits for open requests before giving up on them.
    pub drain_timeout: Duration,
    /// Where spans go (the standard `OTEL_*` variables); `None`: nowhere.
    pub otel: Option<molecule_telemetry::Settings>,
}

impl AgentConfig {
    /// A standalone echo agent with every default: the base tests build on.
    pub fn standalone(executor: ExecutorConfig) -> AgentConfig {
        AgentConfig {
            name: "molecule-agent".into(),
            description: format!("Molecule reference agent ({} executor)", executor.kind()),
            advertised_url: None,
            hostname: "localhost".into(),
            skills: vec![Skill::for_executor(executor.kind())],
            executor,
            platform: None,
            task_capacity: crate::tasks::DEFAULT_CAPACITY,
            drain_timeout: Duration::from_secs(8),
            otel: None,
        }
    }
}

/// The address to listen on: `AGENT_HOST` (default 0.0.0.0) and
/// `AGENT_PORT` or `PORT` (default 8000).
#[derive(Debug, Clone, PartialEq)]
pub struct ListenConfig {
    pub host: String,
    pub port: u16,
}

/// One entry of the card's `skills`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skill {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub examples: Vec<String>,
}

impl Skill {
    fn for_executor(kind: &str) -> Skill {
        let description = match kind {
            "echo" => "Replies with the message text, prefixed by `echo: `.",
            "command" => {
                "Runs a configured program with the message on stdin; replies with its output."
            }
            _ => "Answers the message with a language model.",
        };
        Skill {
            id: kind.into(),
            name: kind.into(),
            description: description.into(),
            tags: vec![kind.into()],
            examples: vec![],
        }
    }
}

/// Which executor runs messages, with its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorConfig {
    Echo { delay: Duration },
    Command(CommandConfig),
    OpenAi(OpenAiConfig),
}

impl ExecutorConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ExecutorConfig::Echo { .. } => "echo",
            ExecutorConfig::Command(_) => "command",
            ExecutorConfig::OpenAi(_) => "openai",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommandConfig {
    pub program: String,
    pub args: Vec<String>,
    pub timeout: Duration,
}

#[derive(Clone, PartialEq)]
pub struct OpenAiConfig {
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub system_prompt: Option<String>,
    pub timeout: Duration,
    /// Offer the model an `ask_user` tool; calling it asks the caller a
    /// question (the task goes `input-required`).
    pub ask_tool: bool,
}

impl std::fmt::Debug for OpenAiConfig {
    // Hand-written so the key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("system_prompt", &self.system_prompt)
            .field("timeout", &self.timeout)
            .field("ask_tool", &self.ask_tool)
            .finish()
    }
}

/// How to reach the platform.
#[derive(Clone, PartialEq)]
pub struct PlatformConfig {
    pub url: String,
    pub workspace_id: String,
    /// `MOLECULE_WORKSPACE_TOKEN`, if given.
    pub token: Option<String>,
    /// Holds `.auth_token`, the token the platform issued at registration.
    pub config_dir: PathBuf,
    pub heartbeat_interval: Duration,
    /// First and longest wait between registration attempts.
    pub register_backoff: (Duration, Duration),
    /// Deadline of each platform call.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for PlatformConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformConfig")
            .field("url", &self.url)
            .field("workspace_id", &self.workspace_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("config_dir", &self.config_dir)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish_non_exhaustive()
    }
}

impl PlatformConfig {
    /// A platform at `url` for `workspace_id` with default timings.
    pub fn new(
        url: impl Into<String>,
        workspace_id: impl Into<String>,
        config_dir: PathBuf,
    ) -> Self {
        PlatformConfig {
            url: url.into(),
            workspace_id: workspace_id.into(),
            token: None,
            config_dir,
            heartbeat_interval: DEFAULT_HEARTBEAT,
            register_backoff: (Duration::from_millis(500), Duration::from_secs(30)),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Reads the whole configuration from `env` (a lookup such as
/// `|k| std::env::var(k).ok()`) and the config.yaml it points to.
pub fn from_env(
    env: impl Fn(&str) -> Option<String>,
) -> Result<(AgentConfig, ListenConfig), AgentError> {
    let env = |key: &str| env(key).filter(|v| !v.trim().is_empty());
    let config_dir = PathBuf::from(
        env("MOLECULE_CONFIG_DIR")
            .or_else(|| env("WORKSPACE_CONFIG_PATH"))
            .unwrap_or_else(|| DEFAULT_CONFIG_DIR.into()),
    );
    let file = FileConfig::load(&config_dir.join("config.yaml"))?;

    let listen = ListenConfig {
        host: env("AGENT_HOST").unwrap_or_else(|| "0.0.0.0".into()),
        port: match env("AGENT_PORT").or_else(|| env("PORT")) {
            Some(port) => parse(&port, "PORT")?,
            None => DEFAULT_PORT,
        },
    };

    let executor = executor_config(&env, &file)?;
    let mut config = AgentConfig::standalone(executor);
    if let Some(name) = env("AGENT_NAME").or(file.name.clone()) {
        config.name = name;
    }
    if let Some(description) = env("AGENT_DESCRIPTION").or(file.description.clone()) {
        config.description = description;
    }
    if let Some(skills) = &file.skills {
        config.skills = skills.iter().map(SkillEntry::to_skill).collect();
    }
    config.advertised_url = env("AGENT_URL");
    if let Some(url) = &config.advertised_url {
        check_http_url(url, "AGENT_URL")?;
    }
    config.hostname = env("HOSTNAME")
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    config.platform = platform_config(&env, config_dir)?;
    config.otel = molecule_telemetry::Settings::from_env("molecule-agent", env)
        .map_err(AgentError::Config)?;
    Ok((config, listen))
}

fn executor_config(
    env: &impl Fn(&str) -> Option<String>,
    file: &FileConfig,
) -> Result<ExecutorConfig, AgentError> {
    let kind = env("MOLECULE_EXECUTOR")
        .or(file.executor.clone())
        .unwrap_or_else(|| "echo".into());
    match kind.trim() {
        "echo" => {
            let delay_ms = match env("ECHO_DELAY_MS") {
                Some(ms) => parse(&ms, "ECHO_DELAY_MS")?,
                None => file.echo.as_ref().and_then(|e| e.delay_ms).unwrap_or(0),
            };
            Ok(ExecutorConfig::Echo {
                delay: Duration::from_millis(delay_ms),
            })
        }
        "command" => {
            let section = file.command.clone().unwrap_or_default();
            let program = env("MOLECULE_COMMAND").or(section.program).ok_or_else(|| {
                AgentError::Config(
                    "the command executor needs MOLECULE_COMMAND or command.program in config.yaml"
                        .into(),
                )
            })?;
            let args = match env("MOLECULE_COMMAND_ARGS") {
                Some(args) => args.split_whitespace().map(str::to_owned).collect(),
                None => section.args.unwrap_or_default(),
            };
            let timeout = match env("MOLECULE_COMMAND_TIMEOUT_SECONDS") {
                Some(s) => seconds(&s, "MOLECULE_COMMAND_TIMEOUT_SECONDS")?,
                None => section
                    .timeout_seconds
                    .map(|s| seconds(&s.to_string(), "command.timeout_seconds"))
                    .transpose()?
                    .unwrap_or(DEFAULT_COMMAND_TIMEOUT),
            };
            Ok(ExecutorConfig::Command(CommandConfig {
                program,
                args,
                timeout,
            }))
        }
        "openai" => {
            let section = file.openai.clone().unwrap_or_default();
            let model = env("OPENAI_MODEL")
                .or(section.model)
                .or(file.model.clone())
                .ok_or_else(|| {
                    AgentError::Config(
                        "the openai executor needs OPENAI_MODEL or model: in config.yaml".into(),
                    )
                })?;
            let timeout = match env("OPENAI_TIMEOUT_SECONDS") {
                Some(s) => seconds(&s, "OPENAI_TIMEOUT_SECONDS")?,
                None => section
                    .timeout_seconds
                    .map(|s| seconds(&s.to_string(), "openai.timeout_seconds"))
                    .transpose()?
                    .unwrap_or(DEFAULT_MODEL_TIMEOUT),
            };
            Ok(ExecutorConfig::OpenAi(OpenAiConfig {
                base_url: env("OPENAI_BASE_URL")
                    .or(section.base_url)
                    .unwrap_or_else(|| DEFAULT_OPENAI_BASE.into()),
                api_key: env("OPENAI_API_KEY"),
                model,
                system_prompt: env("OPENAI_SYSTEM_PROMPT")
                    .or(section.system_prompt)
                    .or(file.system_prompt.clone()),
                timeout,
                ask_tool: match env("OPENAI_ASK_TOOL") {
                    Some(v) => on_off(&v, "OPENAI_ASK_TOOL")?,
                    None => section.ask_tool.unwrap_or(false),
                },
            }))
        }
        other => Err(AgentError::Config(format!(
            "unknown executor {other:?} (expected echo, command or openai)"
        ))),
    }
}

fn platform_config(
    env: &impl Fn(&str) -> Option<String>,
    config_dir: PathBuf,
) -> Result<Option<PlatformConfig>, AgentError> {
    let Some(url) = env("PLATFORM_URL") else {
        return Ok(None);
    };
    check_http_url(&url, "PLATFORM_URL")?;
    let workspace_id = env("WORKSPACE_ID")
        .ok_or_else(|| AgentError::Config("PLATFORM_URL is set but WORKSPACE_ID is not".into()))?;
    let mut platform = PlatformConfig::new(url, workspace_id.trim(), config_dir);
    platform.token = env("MOLECULE_WORKSPACE_TOKEN").map(|t| t.trim().to_owned());
    if let Some(interval) = env("HEARTBEAT_INTERVAL_SECONDS") {
        platform.heartbeat_interval = seconds(&interval, "HEARTBEAT_INTERVAL_SECONDS")?;
    }
    Ok(Some(platform))
}

/// The path of the persisted platform-issued token.
pub fn token_file(config_dir: &Path) -> PathBuf {
    config_dir.join(".auth_token")
}

fn parse<T: std::str::FromStr>(value: &str, name: &str) -> Result<T, AgentError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e| AgentError::Config(format!("{name}={value:?}: {e}")))
}

/// A positive number of seconds, fractions allowed, at most a day.
/// `on`/`true`/`1` or `off`/`false`/`0`.
fn on_off(value: &str, name: &str) -> Result<bool, AgentError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(AgentError::Config(format!(
            "{name}={other:?} must be `on` or `off`"
        ))),
    }
}

fn seconds(value: &str, name: &str) -> Result<Duration, AgentError> {
    let secs: f64 = parse(value, name)?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(AgentError::Config(format!(
            "{name}={value:?}: must be more than 0 and at most 86400 seconds"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn check_http_url(url: &str, name: &str) -> Result<(), AgentError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(AgentError::Config(format!(
            "{name}={url:?}: must be an http(s) URL"
        )))
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
