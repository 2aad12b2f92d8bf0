//! Row types: what the store reads and writes. Not API views; the server
//! converts them.

use chrono::{DateTime, Utc};
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
