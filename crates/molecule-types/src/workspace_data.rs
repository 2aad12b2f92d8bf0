//! Wire DTOs of a workspace's schedules, secrets, memories, approvals and
//! config (api-contract §5.8–§5.11). Requests carry what a client sends;
//! responses are what the server answers (field names as in the contract).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// `POST /workspaces/:id/schedules`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateSchedule {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub cron_expr: String,
    /// IANA zone; `None` = UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `201` of schedule creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleCreated {
    pub id: Uuid,
    pub status: String,
    pub next_run_at: Option<DateTime<Utc>>,
}

/// A schedule as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
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

/// `GET /workspaces/:id/schedules/health` entry (no prompt or expression).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleHealth {
    pub id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub last_run_at: Option<DateTime<Utc>>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub run_count: i32,
    pub last_status: String,
    pub last_error: String,
}

/// `POST …/schedules/:sid/run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleFired {
    pub status: String,
    pub workspace_id: Uuid,
    pub prompt: String,
}

/// A `cron_run` history row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRun {
    pub timestamp: DateTime<Utc>,
    pub duration_ms: Option<i64>,
    pub status: String,
    pub error_detail: Option<String>,
    pub request: Option<Value>,
}

/// `POST|PUT …/secrets`, `PUT /settings/secrets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetSecret {
    pub key: String,
    pub value: String,
}

/// A secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretEntry {
    pub key: String,
    pub has_value: bool,
    /// `workspace` or `global`.
    pub scope: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /workspaces/:id/memory`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetMemoryEntry {
    pub key: String,
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
}

/// A live key/value memory entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub key: String,
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /workspaces/:id/memories`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitMemory {
    pub content: String,
    /// `LOCAL`, `TEAM` or `GLOBAL`.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `201` of a memory commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryCommitted {
    pub id: Uuid,
    pub scope: String,
    pub namespace: String,
}

/// A scoped memory as searched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub content: String,
    pub scope: String,
    pub namespace: String,
    pub created_at: DateTime<Utc>,
}

/// `GET /workspaces/:id/memories` query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemorySearch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `POST /workspaces/:id/approvals`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateApproval {
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

/// `201` of an approval request, and the answer to a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalStatus {
    pub approval_id: Uuid,
    pub status: String,
}

/// `POST …/approvals/:aid/decide`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecideApproval {
    /// `approved` or `denied`.
    pub decision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

/// An approval of one workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: Uuid,
    pub task_id: Option<String>,
    pub action: String,
    pub reason: Option<String>,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// `GET /approvals/pending` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub action: String,
    pub reason: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}
