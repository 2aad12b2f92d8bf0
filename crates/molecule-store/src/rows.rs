//! Row types: what the store reads and writes. Not API views; the server
//! converts them.

use chrono::{DateTime, Utc};
use molecule_types::DelegationStatus;
use molecule_types::WorkspaceStatus;
use serde_json::Value;
use uuid::Uuid;

/// A `workspaces` row joined with its `canvas_layouts` row.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceRow {
    pub id: Uuid,
    pub name: String,
    pub role: Option<String>,
    pub tier: i32,
    pub status: WorkspaceStatus,
    pub status_reason: Option<String>,
    pub source_bundle_id: Option<String>,
    pub agent_card: Option<Value>,
    pub url: Option<String>,
    pub parent_id: Option<Uuid>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub last_error_rate: f64,
    pub last_sample_error: Option<String>,
    pub active_tasks: i32,
    pub uptime_seconds: i32,
    pub current_task: Option<String>,
    pub awareness_namespace: Option<String>,
    pub runtime: String,
    pub workspace_dir: Option<String>,
    pub workspace_access: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// From `canvas_layouts`; 0 when there is no layout row.
    pub x: f64,
    pub y: f64,
    pub collapsed: bool,
}

/// What `workspace_insert` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWorkspace {
    pub id: Uuid,
    pub name: String,
    pub role: Option<String>,
    pub tier: i32,
    pub status: WorkspaceStatus,
    pub url: Option<String>,
    pub parent_id: Option<Uuid>,
    pub awareness_namespace: Option<String>,
    pub runtime: String,
    pub workspace_dir: Option<String>,
    pub workspace_access: String,
    pub source_bundle_id: Option<String>,
    pub x: f64,
    pub y: f64,
    pub now: DateTime<Utc>,
}

/// A validated PATCH: `None` leaves a column alone. For nullable columns the
/// inner `Option` is the new value (`Some(None)` clears it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkspacePatch {
    pub name: Option<String>,
    pub role: Option<Option<String>>,
    pub tier: Option<i32>,
    pub parent_id: Option<Option<Uuid>>,
    pub runtime: Option<String>,
    pub workspace_dir: Option<Option<String>>,
    /// Canvas position, upserted into `canvas_layouts`.
    pub position: Option<(f64, f64)>,
}

/// Result of the registration upsert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// A new row was created.
    Inserted,
    /// An existing row was updated; carries its status before the update.
    Updated { previous: WorkspaceStatus },
    /// The row is removed; nothing was written.
    SkippedRemoved,
}

/// The statistics a heartbeat writes.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatWrite {
    pub id: Uuid,
    pub error_rate: f64,
    pub sample_error: String,
    pub active_tasks: i32,
    pub uptime_seconds: i32,
    pub current_task: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: String,
    pub workspace_id: Option<Uuid>,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub id: Uuid,
    pub event_type: String,
    pub workspace_id: Option<Uuid>,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

/// An `activity_logs` row to write. `source_id` is the calling workspace
/// (`None` for the canvas and for system callers, whose id goes in
/// `source_label` instead of being lost).
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub activity_type: String,
    pub source_id: Option<Uuid>,
    pub source_label: Option<String>,
    pub target_id: Option<Uuid>,
    pub method: Option<String>,
    pub summary: Option<String>,
    pub request_body: Option<Value>,
    pub response_body: Option<Value>,
    pub duration_ms: Option<i64>,
    pub status: String,
    pub error_detail: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Valid JSON text stored instead of `request_body` when set: the
    /// proxy's hot path logs bodies without parsing and re-serialising them.
    pub request_raw: Option<String>,
    /// Valid JSON text stored instead of `response_body` when set.
    pub response_raw: Option<String>,
}

impl NewActivity {
    /// The request body as JSON text, whichever form it was given in.
    pub fn request_text(&self) -> Option<String> {
        self.request_raw
            .clone()
            .or_else(|| self.request_body.as_ref().map(Value::to_string))
    }

    /// The response body as JSON text, whichever form it was given in.
    pub fn response_text(&self) -> Option<String> {
        self.response_raw
            .clone()
            .or_else(|| self.response_body.as_ref().map(Value::to_string))
    }

    /// A row of `activity_type` on `workspace_id` with status `ok`, now.
    /// The id is a time-ordered UUIDv7: the busiest table of the platform
    /// then appends to its primary-key index instead of touching a random
    /// page per row.
    pub fn new(workspace_id: Uuid, activity_type: &str) -> Self {
        Self {
            id: Uuid::now_v7(),
            workspace_id,
            activity_type: activity_type.to_string(),
            source_id: None,
            source_label: None,
            target_id: None,
            method: None,
            summary: None,
            request_body: None,
            response_body: None,
            duration_ms: None,
            status: "ok".to_string(),
            error_detail: None,
            idempotency_key: None,
            created_at: Utc::now(),
            request_raw: None,
            response_raw: None,
        }
    }
}

/// An `activity_logs` row as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub activity_type: String,
    pub source_id: Option<Uuid>,
    pub source_label: Option<String>,
    pub target_id: Option<Uuid>,
    pub method: Option<String>,
    pub summary: Option<String>,
    pub request_body: Option<Value>,
    pub response_body: Option<Value>,
    pub duration_ms: Option<i64>,
    pub status: String,
    pub error_detail: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// `source=canvas` (no calling workspace) or `source=agent` (one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivitySource {
    Canvas,
    Agent,
}

/// A filtered, newest-first read of one workspace's activity.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityQuery {
    pub workspace_id: Uuid,
    pub activity_type: Option<String>,
    pub source: Option<ActivitySource>,
    /// Only rows with one of these methods; empty = any.
    pub methods: Vec<String>,
    pub limit: i64,
}

/// How a delegation's tracking row changes.
#[derive(Debug, Clone, PartialEq)]
pub struct DelegationUpdate<'a> {
    pub workspace_id: Uuid,
    pub delegation_id: &'a str,
    pub status: DelegationStatus,
    /// Overwrites `error_detail` when non-empty.
    pub error: Option<&'a str>,
    /// Only rows currently in one of these statuses change; empty = any.
    pub from: &'a [DelegationStatus],
}

/// An `agent_memories` row as session search shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryHit {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub content: String,
    pub scope: String,
    pub namespace: String,
    pub created_at: DateTime<Utc>,
}
