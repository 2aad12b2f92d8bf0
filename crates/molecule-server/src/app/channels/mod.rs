//! Chat channels (api-contract §5.17, subsystems §5.6): a workspace talks
//! in a Telegram or Slack chat. Each platform is an [`Adapter`]; this file
//! holds what they share — sealing and opening secret fields, the message
//! counter and events, discover, the pollers' state. CRUD, send and test
//! are in `crud.rs`, inbound messages in `inbound.rs` and `webhook.rs`, the
//! pollers in `pollers.rs`, the platforms in `telegram.rs` and `slack.rs`.

pub mod crud;
pub mod inbound;
pub mod pollers;
pub mod slack;
pub mod telegram;
pub mod webhook;

use async_trait::async_trait;
use base64::Engine;
use molecule_store::ChannelRow;
use molecule_types::{Event, EventType};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

use crate::app::App;
use crate::app::auth::AdminAccess;
use crate::background::jobs::Jobs;
use crate::error::{AppError, AppResult};

/// The background task that runs the pollers.
pub const CHANNELS_TASK: &str = "channels";

/// Prefix of a sealed secret field (as the reference).
const SEALED: &str = "ec1:";

/// A message from a chat, as an adapter parsed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub chat_id: String,
    pub user_id: String,
    pub username: String,
    pub text: String,
    pub message_id: String,
    /// Platform details passed to the agent as `metadata.extra`.
    pub extra: Value,
}

/// An update that is not a message but changes the channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Membership {
    /// The bot was added to `chat_id`.
    Added { chat_id: String, title: String },
    /// The bot was removed from `chat_id`.
    Removed { chat_id: String },
}

/// Why a platform refused a call.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The token is not (or no longer) valid.
    Unauthorized(String),
    /// Slow down for this many seconds.
    RateLimited(u64),
    Other(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Unauthorized(m) => write!(f, "unauthorized: {m}"),
            ApiError::RateLimited(s) => write!(f, "rate limited for {s} s"),
            ApiError::Other(m) => f.write_str(m),
        }
    }
}

/// What one long poll brought.
#[derive(Debug, Default)]
pub struct Polled {
    pub messages: Vec<Inbound>,
    pub membership: Vec<Membership>,
    /// Where the next poll starts.
    pub next_offset: i64,
}

/// A chat platform.
#[async_trait]
pub trait Adapter: Send + Sync {
    fn kind(&self) -> &'static str;
    fn display_name(&self) -> &'static str;
    /// Config fields sealed at rest and masked when listed.
    fn secret_fields(&self) -> &'static [&'static str];
    /// `Err` says what is wrong with `config` (opened).
    fn validate(&self, config: &Value) -> Result<(), String>;
    /// The chats a channel with `config` talks in.
    fn chats(&self, config: &Value) -> Vec<String>;
    /// A pushed update (a webhook's body) as a message, if it is one.
    fn parse_inbound(&self, update: &Value) -> Option<Inbound>;
    /// Sends `text` (split as the platform needs) to `chat`.
    async fn send(&self, app: &App, config: &Value, chat: &str, text: &str)
    -> Result<(), ApiError>;
    /// Shows "typing…" in `chat` (best effort).
    async fn typing(&self, _app: &App, _config: &Value, _chat: &str) {}
    /// Whether this platform's messages come by long polling (else only by
    /// webhook).
    fn polls(&self) -> bool {
        false
    }
    /// One long poll from `offset`.
    async fn poll(&self, _app: &App, _config: &Value, _offset: i64) -> Result<Polled, ApiError> {
        Ok(Polled::default())
    }
}

/// The platforms this build knows.
pub fn adapter(kind: &str) -> Option<&'static dyn Adapter> {
    match kind {
        "telegram" => Some(&telegram::Telegram),
        "slack" => Some(&slack::Slack),
        _ => None,
    }
}

pub fn adapters() -> [&'static dyn Adapter; 2] {
    [&telegram::Telegram, &slack::Slack]
}

/// A poller as `/admin/liveness` shows it.
#[derive(Debug, Clone)]
pub struct PollerStatus {
    pub channel_type: String,
    pub workspace_id: Uuid,
    pub state: String,
    pub last_poll_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
}

/// The pollers and message jobs of this process.
pub struct ChannelState {
    /// Running pollers by channel: the config they run with, a stop flag,
    /// and what they report.
    pub(crate) pollers: Mutex<HashMap<Uuid, pollers::Poller>>,
    pub(crate) poller_jobs: Jobs<Uuid>,
    /// Inbound messages being answered, one job per (channel, message).
    pub(crate) message_jobs: Jobs<(Uuid, String)>,
}

impl Default for ChannelState {
    fn default() -> Self {
        Self {
            pollers: Mutex::new(HashMap::new()),
            poller_jobs: Jobs::new("channel poller", 64),
            message_jobs: Jobs::new("channel message", 16),
        }
    }
}

/// A channel with its secret fields opened.
#[derive(Debug, Clone)]
pub struct OpenChannel {
    pub row: ChannelRow,
    pub config: Value,
}

impl App {
    /// Seals `config`'s secret fields for `adapter`.
    fn seal_config(&self, adapter: &dyn Adapter, mut config: Value) -> Value {
        for field in adapter.secret_fields() {
            if let Some(plain) = config[*field].as_str().filter(|s| !s.starts_with(SEALED)) {
                let sealed = self.secret_box.seal(plain);
                let b64 = base64::engine::general_purpose::STANDARD.encode(sealed.bytes());
                config[*field] = json!(format!("{SEALED}{}:{b64}", sealed.version()));
            }
        }
        config
    }

    /// Opens `config`'s sealed fields; an unprefixed value is plaintext.
    fn open_config(&self, adapter: &dyn Adapter, mut config: Value) -> Result<Value, String> {
        for field in adapter.secret_fields() {
            let Some(stored) = config[*field].as_str() else {
                continue;
            };
            let Some(rest) = stored.strip_prefix(SEALED) else {
                continue;
            };
            let (version, b64) = rest
                .split_once(':')
                .ok_or_else(|| format!("{field}: malformed sealed value"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| format!("{field}: malformed sealed value"))?;
            let version = version
                .parse()
                .map_err(|_| format!("{field}: bad version"))?;
            let plain = self
                .secret_box
                .open(&bytes, version)
                .map_err(|e| format!("{field}: cannot be opened ({e:?})"))?;
            config[*field] = json!(plain);
        }
        Ok(config)
    }

    /// A stored channel with its config opened.
    pub fn open_channel(&self, row: ChannelRow) -> Result<OpenChannel, String> {
        let adapter = adapter(&row.channel_type)
            .ok_or_else(|| format!("unsupported channel_type: {}", row.channel_type))?;
        let config = self.open_config(adapter, row.config.clone())?;
        Ok(OpenChannel { row, config })
    }

    /// Every enabled channel, opened (those that cannot be opened are
    /// logged and left out).
    pub async fn enabled_channels(&self) -> AppResult<Vec<OpenChannel>> {
        let rows = self
            .store
            .channel_enabled()
            .await
            .map_err(AppError::internal("failed to list channels"))?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let id = row.id;
                self.open_channel(row)
                    .inspect_err(
                        |e| tracing::warn!(channel_id = %id, error = %e, "channel skipped"),
                    )
                    .ok()
            })
            .collect())
    }

    /// Counts a message and raises `CHANNEL_MESSAGE`.
    pub(crate) async fn channel_sent(&self, row: &ChannelRow, username: &str, direction: &str) {
        if let Err(e) = self.store.channel_counted(row.id, self.now()).await {
            tracing::warn!(channel_id = %row.id, error = %e, "channel counter not updated");
        }
        let mut payload = json!({
            "channel_id": row.id, "channel_type": row.channel_type, "direction": direction,
        });
        if !username.is_empty() {
            payload["username"] = json!(username);
        }
        self.events
            .emit(Event::new(
                EventType::ChannelMessage,
                row.workspace_id,
                payload,
            ))
            .await;
    }

    /// `POST /channels/discover` (admin): the chats a Telegram bot is in.
    pub async fn channel_discover(&self, _admin: AdminAccess, body: &Value) -> AppResult<Value> {
        let kind = body["channel_type"].as_str().unwrap_or("telegram");
        let token = body["bot_token"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AppError::invalid("bot_token is required"))?;
        let workspace: Uuid = body["workspace_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| AppError::invalid("workspace_id is required"))?;
        if kind != "telegram" {
            return Err(AppError::invalid(format!(
                "discover is not supported for channel_type: {kind}"
            )));
        }
        self.workspace_row(workspace).await?;
        // The workspace's pollers on this token would take the updates:
        // they pause while discover reads them, and resume after.
        let paused = self.pause_pollers(workspace, token);
        let result = telegram::discover(self, token).await;
        self.resume_pollers(paused);
        result.map_err(|e| AppError::invalid(format!("telegram: {e}")))
    }

    /// `/admin/liveness`'s view of the pollers.
    pub fn poller_statuses(&self) -> Vec<(Uuid, PollerStatus)> {
        self.channels
            .pollers
            .lock()
            .map(|p| p.iter().map(|(id, p)| (*id, p.status())).collect())
            .unwrap_or_default()
    }
}

/// Splits `text` into pieces of at most `max` characters, at a paragraph,
/// else a line, else a space (in the latter half of a piece), else
/// anywhere.
pub fn chunks(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > max {
        let cut = rest
            .char_indices()
            .nth(max)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let head = &rest[..cut];
        let at = ["\n\n", "\n", " "]
            .iter()
            // A separator in the first half would leave a stub: cut hard.
            .find_map(|sep| head.rfind(sep).filter(|i| *i >= cut / 2))
            .unwrap_or(cut);
        out.push(rest[..at].trim_end().to_string());
        rest = rest[at..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_splits_at_paragraphs_then_lines_then_spaces() {
        let text = format!("{}\n\n{}", "a".repeat(30), "b".repeat(30));
        assert_eq!(chunks(&text, 40), vec!["a".repeat(30), "b".repeat(30)]);
        let text = format!("{} {}", "c".repeat(30), "d".repeat(30));
        assert_eq!(chunks(&text, 40), vec!["c".repeat(30), "d".repeat(30)]);
        let long = "e".repeat(90);
        let parts = chunks(&long, 40);
        assert_eq!(
            parts.iter().map(String::len).collect::<Vec<_>>(),
            [40, 40, 10]
        );
        assert_eq!(chunks("short", 40), vec!["short"]);
        assert!(chunks("  ", 40).is_empty());
        let stub = format!("echo: {}", "f".repeat(60));
        assert_eq!(chunks(&stub, 40)[0].len(), 40, "no 5-character stub");
        let multi = "é".repeat(50);
        assert!(chunks(&multi, 40).iter().all(|p| p.chars().count() <= 40));
    }
}
