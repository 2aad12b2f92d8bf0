//! Request and response bodies of the HTTP API (api-contract.md §5), shared by
//! the server (which produces them) and the client (which consumes them).
//! Field names follow the contract exactly.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::WorkspaceStatus;

/// The workspace object of `GET /workspaces` and `GET /workspaces/:id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Workspace {
    pub id: Uuid,
    pub name: String,
    pub role: Option<String>,
    pub tier: i32,
    pub status: WorkspaceStatus,
    /// Why the workspace is in its status, for every non-healthy status
    /// (an addition to the reference shape).
    #[serde(default)]
    pub status_reason: Option<String>,
    pub agent_card: Option<Value>,
    /// What the A2A conformance probe found when the agent last registered
    /// (`checked_at`, `passed`, `failed: [{check, detail}]`); absent until a
    /// probe ran (an addition to the reference shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a2a_conformance: Option<Value>,
    pub url: String,
    pub parent_id: Option<Uuid>,
    pub active_tasks: i32,
    pub last_error_rate: f64,
    pub last_sample_error: String,
    pub uptime_seconds: i32,
    pub current_task: String,
    pub runtime: String,
    pub workspace_dir: Option<String>,
    pub x: f64,
    pub y: f64,
    pub collapsed: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CanvasPosition {
    #[serde(default)]
    pub x: f64,
    #[serde(default)]
    pub y: f64,
}

/// `POST /workspaces` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateWorkspace {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canvas: Option<CanvasPosition>,
}

/// `POST /workspaces` response (201).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CreatedWorkspace {
    pub id: Uuid,
    pub status: WorkspaceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awareness_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// Production: the workspace's credential, returned this once when the
    /// platform will not hand it to a runtime itself (an `external` agent,
    /// or no runtime backend). An addition to the contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
}

/// `POST /registry/register` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub id: String,
    pub url: String,
    pub agent_card: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RegisterResponse {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
}

/// `POST /registry/heartbeat` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Heartbeat {
    pub workspace_id: String,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub sample_error: String,
    #[serde(default)]
    pub active_tasks: i32,
    #[serde(default)]
    pub uptime_seconds: i32,
    #[serde(default)]
    pub current_task: String,
}

/// `POST /registry/update-card` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateCard {
    pub workspace_id: String,
    pub agent_card: Value,
}

/// `GET /registry/discover/:id` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Discovered {
    pub id: Uuid,
    pub url: String,
    pub name: String,
}

/// One entry of `GET /registry/:id/peers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Peer {
    pub id: Uuid,
    pub name: String,
    pub role: Option<String>,
    pub tier: i32,
    pub status: WorkspaceStatus,
    pub agent_card: Option<Value>,
    pub url: String,
    pub parent_id: Option<Uuid>,
    pub active_tasks: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckAccess {
    pub caller_id: String,
    pub target_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessDecision {
    pub allowed: bool,
}

/// A row of `GET /events`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredEvent {
    pub id: Uuid,
    pub event_type: String,
    pub workspace_id: Option<Uuid>,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

/// `GET /workspaces/:id/state`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkspaceState {
    pub workspace_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<WorkspaceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    pub deleted: bool,
}

/// `DELETE /workspaces/:id` 200 body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Removed {
    pub status: String,
    pub cascade_deleted: usize,
}

/// `GET /admin/workspaces/:id/test-token`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestToken {
    pub auth_token: String,
    pub workspace_id: Uuid,
}

/// One background task in `GET /admin/liveness`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubsystemLiveness {
    pub last_tick_at: Option<DateTime<Utc>>,
    pub seconds_ago: Option<f64>,
    #[serde(default)]
    pub period_seconds: f64,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub stale: bool,
    #[serde(default)]
    pub panics: u64,
    #[serde(default)]
    pub last_error: Option<String>,
    /// How long the last completed activation took (a sweep's duration).
    #[serde(default)]
    pub last_duration_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Liveness {
    pub subsystems: std::collections::BTreeMap<String, SubsystemLiveness>,
    /// The restart governor's fleet-wide state (an addition to the
    /// reference shape); absent from older platforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetView>,
    /// Each chat channel poller by channel id (an addition).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub channels: std::collections::BTreeMap<String, ChannelPollerView>,
    /// This replica and the others it hears from on the database (an
    /// addition; absent on SQLite, which is single-process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaView>,
}

/// A replica as `GET /admin/liveness` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplicaView {
    /// This process's id on the bus (new at every start).
    pub id: Uuid,
    /// The other replicas heard from in the last 15 s.
    pub peers: Vec<Uuid>,
}

/// A channel poller as `GET /admin/liveness` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChannelPollerView {
    pub channel_type: String,
    pub workspace_id: Uuid,
    /// `starting`, `polling`, `rate_limited`, `unauthorized`,
    /// `backing_off` or `stopped`.
    pub state: String,
    pub last_poll_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// The fleet breaker as `GET /admin/liveness` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FleetView {
    /// Open: too many workspaces looked gone at once, so no automatic
    /// restarts until the observer looks healthy again.
    pub breaker_open: bool,
}

/// The bare `{status: "..."}` acknowledgement of `GET /health`,
/// `POST /registry/heartbeat` and `POST /registry/update-card`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusReply {
    pub status: String,
}

/// `PATCH /workspaces/:id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Updated {
    pub status: String,
    /// Set when a change only takes effect at the next start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_restart: Option<bool>,
}

/// `POST /workspaces/:id/restart` (the body is optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RestartRequest {
    /// A template whose files replace `/configs` before the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Re-apply the runtime's default template (`<runtime>-default`) when
    /// no `template` is named.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub apply_template: bool,
    /// Start a fresh agent session (also `?reset=true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
}

/// `POST /workspaces/:id/restart` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Restarted {
    pub status: String,
    pub config_dir: String,
    pub reset_session: bool,
}

/// `POST /workspaces/:id/pause`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Paused {
    pub status: String,
    pub paused_count: usize,
}

/// `POST /workspaces/:id/resume`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Resumed {
    pub status: String,
    pub resumed_count: usize,
}
