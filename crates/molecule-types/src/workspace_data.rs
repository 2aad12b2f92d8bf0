//! Wire DTOs of a workspace's schedules, secrets, memories, approvals and
//! config (api-contract §5.8–§5.11). Requests carry what a client sends;
//! responses are what the server answers (field names as in the contract).

use crate::{ActivityType, ApprovalState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// `POST /workspaces/:id/schedules`. A missing `cron_expr` or `prompt` reads
/// as empty, which the server answers with a 400 naming them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateSchedule {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub cron_expr: String,
    /// IANA zone; `None` = UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default)]
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

impl From<Schedule> for ScheduleHealth {
    fn from(s: Schedule) -> Self {
        ScheduleHealth {
            id: s.id,
            name: s.name,
            enabled: s.enabled,
            last_run_at: s.last_run_at,
            next_run_at: s.next_run_at,
            run_count: s.run_count,
            last_status: s.last_status,
            last_error: s.last_error,
        }
    }
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

/// `POST|PUT …/secrets`, `PUT /settings/secrets`. Missing fields read as
/// empty (the server's 400 names them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetSecret {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
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

/// `POST /workspaces/:id/memory`. A missing (or null) `value` reads as
/// `Null`, which the server refuses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetMemoryEntry {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
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
    #[serde(default)]
    pub content: String,
    /// `LOCAL`, `TEAM` or `GLOBAL`.
    #[serde(default)]
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
    #[serde(default)]
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
    pub status: ApprovalState,
}

/// `POST …/approvals/:aid/decide`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecideApproval {
    /// `approved` or `denied`.
    #[serde(default)]
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
    pub status: ApprovalState,
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
    pub status: ApprovalState,
    pub created_at: DateTime<Utc>,
}

/// `{"status", "key"[, "scope"]}`: a secret or memory key was saved or
/// deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyStatus {
    pub status: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// `GET /workspaces/:id/model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSetting {
    pub model: String,
    /// `workspace_secrets` or `default`.
    pub source: String,
}

/// `GET /workspaces/:id/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceConfig {
    pub data: Value,
}

/// `POST /workspaces/:id/delegate`: 202 for a new delegation, 200 with
/// `idempotent_hit` for the live one holding the same key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelegationAccepted {
    pub delegation_id: Option<String>,
    /// `delegated` (new), else the existing delegation's status.
    pub status: String,
    pub target_id: Option<Uuid>,
    /// Set when the tracking row could not be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent_hit: Option<bool>,
}

/// A row of `GET /workspaces/:id/delegations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delegation {
    pub id: Uuid,
    /// `delegate` (the tracking row) or `delegate_result`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub source_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub summary: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_preview: Option<String>,
}

/// `POST …/delegations/record` and `…/delegations/:id/update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelegationAck {
    pub delegation_id: String,
    pub status: String,
}

/// A row of `GET /workspaces/:id/activity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub activity_type: ActivityType,
    pub source_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub method: Option<String>,
    pub summary: Option<String>,
    pub duration_ms: Option<i64>,
    pub status: String,
    pub error_detail: Option<String>,
    pub created_at: DateTime<Utc>,
    /// A system caller (`webhook:…`, `channel:…`) that has no workspace id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<Value>,
}

/// A hit of `GET /workspaces/:id/session-search`: an activity row or a
/// memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionHit {
    /// `activity` or `memory`.
    pub kind: String,
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// The activity type, or `scope/namespace` of a memory.
    pub label: String,
    pub content: String,
    pub method: Option<String>,
    pub status: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn optional_fields_are_absent_not_null_where_the_contract_omits_them() {
        let at: DateTime<Utc> = "2026-01-02T03:04:05Z".parse().unwrap();
        let id = Uuid::nil();
        let row = Delegation {
            id,
            kind: Some("delegate".into()),
            source_id: None,
            target_id: None,
            summary: None,
            status: "pending".into(),
            created_at: at,
            delegation_id: None,
            error: None,
            response_preview: None,
        };
        assert_eq!(
            serde_json::to_value(&row).unwrap(),
            json!({
                "id": id, "type": "delegate", "source_id": null, "target_id": null,
                "summary": null, "status": "pending", "created_at": at,
            })
        );
        let saved = KeyStatus {
            status: "saved".into(),
            key: "K".into(),
            scope: None,
        };
        assert_eq!(
            serde_json::to_value(&saved).unwrap(),
            json!({"status": "saved", "key": "K"})
        );
    }

    #[test]
    fn lenient_requests_read_missing_fields_as_empty() {
        let s: CreateSchedule = serde_json::from_value(json!({})).unwrap();
        assert!(s.cron_expr.is_empty() && s.prompt.is_empty());
        let m: SetMemoryEntry = serde_json::from_value(json!({"key": "k"})).unwrap();
        assert!(m.value.is_null());
        let c: CommitMemory = serde_json::from_value(json!({})).unwrap();
        assert!(c.content.is_empty() && c.scope.is_empty());
        let a: CreateApproval = serde_json::from_value(json!({})).unwrap();
        assert!(a.action.is_empty());
        let d: DecideApproval = serde_json::from_value(json!({})).unwrap();
        assert!(d.decision.is_empty());
        let k: SetSecret = serde_json::from_value(json!({})).unwrap();
        assert!(k.key.is_empty() && k.value.is_empty());
    }
}
