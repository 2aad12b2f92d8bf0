//! Row types of the issue-5 resources: schedules, secrets, key/value and
//! scoped memories, approvals. Not API views; the server converts them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// A `workspace_schedules` row.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub cron_expr: String,
    pub timezone: String,
    pub prompt: String,
    pub enabled: bool,
    pub last_run_at: Option<DateTime<Utc>>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub run_count: i32,
    pub last_status: String,
    pub last_error: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What `schedule_insert` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub cron_expr: String,
    pub timezone: String,
    pub prompt: String,
    pub enabled: bool,
    pub next_run_at: Option<DateTime<Utc>>,
    /// `runtime` (API) or `template` (org import).
    pub source: String,
    pub now: DateTime<Utc>,
}

/// A validated schedule PATCH: `None` leaves a column alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulePatch {
    pub name: Option<String>,
    pub cron_expr: Option<String>,
    pub timezone: Option<String>,
    pub prompt: Option<String>,
    pub enabled: Option<bool>,
    /// `Some(None)` clears it (the expression no longer parses).
    pub next_run_at: Option<Option<DateTime<Utc>>>,
}

/// The outcome of one run (fired, failed or skipped), written after a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRunResult {
    pub status: String,
    pub error: String,
    /// When the run started: becomes `last_run_at`.
    pub started_at: DateTime<Utc>,
    /// When it finished: `updated_at`.
    pub at: DateTime<Utc>,
}

/// A secret as stored: the bytes and the format they are in. Only the
/// server's sealing code builds these, so the version always matches.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRow {
    pub key: String,
    pub value: Vec<u8>,
    pub encryption_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A live `workspace_memory` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEntryRow {
    pub key: String,
    pub value: Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// An `agent_memories` row.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub content: String,
    pub scope: String,
    pub namespace: String,
    pub created_at: DateTime<Utc>,
}

/// Which `agent_memories` rows a search may return; the server computes the
/// visibility (authors), the store only filters and ranks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemoryQuery {
    /// Rows of this scope only (`None`: any scope).
    pub scope: Option<String>,
    /// Rows written by one of these workspaces (`None`: any author).
    pub authors: Option<Vec<Uuid>>,
    pub namespace: Option<String>,
    pub text: MemoryText,
    pub limit: i64,
}

/// How `q` filters memories.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum MemoryText {
    /// Newest first.
    #[default]
    All,
    /// Case-insensitive substring (wildcards in the input are literal).
    Substring(String),
    /// Full-text (SQLite FTS5 porter / PostgreSQL english tsvector), ranked.
    FullText(String),
}

/// An `approval_requests` row (with the requester's name for listings).
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub task_id: Option<String>,
    pub action: String,
    pub reason: Option<String>,
    pub context: Option<Value>,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub task_id: Option<String>,
    pub action: String,
    pub reason: Option<String>,
    pub context: Value,
    pub now: DateTime<Utc>,
}
