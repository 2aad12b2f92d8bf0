//! `activity_logs`: the batched writer's inserts, listings, delegation tracking
//! rows, retention and session search.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::ActivityType;
use molecule_types::DelegationStatus;
use serde_json::Value;
use uuid::Uuid;

#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Insert a batch in one transaction; rows whose workspace is gone and
    /// idempotency-key duplicates are skipped. Returns the rows written.
    async fn activity_insert_many(&self, rows: &[NewActivity]) -> Result<u64>;

    /// Insert one row now. False when the (workspace, idempotency key) pair
    /// is taken (or the workspace is gone): nothing was written.
    async fn activity_insert(&self, row: &NewActivity) -> Result<bool>;

    /// The row holding `key` for `workspace_id`, if any.
    async fn activity_by_idempotency_key(
        &self,
        workspace_id: Uuid,
        key: &str,
    ) -> Result<Option<ActivityRow>>;

    async fn activity_delete(&self, id: Uuid) -> Result<bool>;

    /// Newest first, filtered.
    async fn activity_list(&self, q: &ActivityQuery) -> Result<Vec<ActivityRow>>;

    /// The `delegate` tracking row of `delegation_id` on `workspace_id`.
    async fn activity_delegation(
        &self,
        workspace_id: Uuid,
        delegation_id: &str,
    ) -> Result<Option<ActivityRow>>;

    /// Tracking rows of delegations the platform dispatches itself
    /// (`request_body.dispatched_by = "platform"`) that are still `pending`
    /// or `dispatched`, oldest first, at most `limit`.
    async fn activity_open_delegations(&self, limit: i64) -> Result<Vec<ActivityRow>>;

    /// Change the status of a delegation's tracking row(s) and, when one
    /// changed, insert `result` (its result row), in one transaction:
    /// whoever reads the new status also finds the result, and a caller that
    /// lost the race to finish it writes nothing. Returns how many tracking
    /// rows changed.
    async fn activity_delegation_update(
        &self,
        u: &DelegationUpdate<'_>,
        result: Option<&NewActivity>,
    ) -> Result<u64>;

    /// Retention: delete every row created before `before`.
    async fn activity_purge_before(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Case-insensitive substring search over one workspace's activity
    /// (summary, method, status, error, bodies); `None` = newest rows.
    async fn activity_search(
        &self,
        workspace_id: Uuid,
        q: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ActivityRow>>;

    /// The same search over the workspace's own `agent_memories`.
    async fn memory_search_own(
        &self,
        workspace_id: Uuid,
        q: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MemoryHit>>;
}

/// An `activity_logs` row to write. `source_id` is the calling workspace
/// (`None` for the canvas and for system callers, whose id goes in
/// `source_label` instead of being lost).
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub activity_type: ActivityType,
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
    pub fn new(workspace_id: Uuid, activity_type: ActivityType) -> Self {
        Self {
            id: Uuid::now_v7(),
            workspace_id,
            activity_type,
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
    pub activity_type: ActivityType,
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
    pub activity_type: Option<ActivityType>,
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

/// SQL both backends run as written (the dialects differ elsewhere).
pub(crate) mod sql {
    pub(crate) const DELETE: &str = "DELETE FROM activity_logs WHERE id = $1";
}
