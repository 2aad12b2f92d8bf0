//! `approval_requests`: human approvals, decisions and expiry.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::ApprovalState;
use molecule_types::WorkspaceId;
use serde_json::Value;
use uuid::Uuid;

#[async_trait]
pub trait ApprovalStore: Send + Sync {
    async fn approval_insert(&self, a: &NewApproval) -> Result<()>;

    /// The workspace's newest approvals.
    async fn approval_list(&self, workspace_id: Uuid, limit: i64) -> Result<Vec<ApprovalRow>>;

    /// Decide a `pending` approval of that workspace; false otherwise.
    async fn approval_decide(
        &self,
        workspace_id: WorkspaceId,
        id: Uuid,
        status: ApprovalState,
        decided_by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Deny every pending approval created before `before` with
    /// `decided_by = 'auto-expired'`; returns the rows it expired.
    async fn approval_expire(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ApprovalRow>>;

    /// Pending approvals across workspaces, oldest first.
    async fn approval_list_pending(&self, limit: i64) -> Result<Vec<ApprovalRow>>;
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
    pub status: ApprovalState,
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

/// SQL both backends run as written (the dialects differ elsewhere).
pub(crate) mod sql {
    pub(crate) const INSERT: &str = "INSERT INTO approval_requests (id, workspace_id, task_id, action, reason, context, \
             status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)";

    pub(crate) const DECIDE: &str = "UPDATE approval_requests SET status = $3, decided_by = $4, decided_at = $5 \
             WHERE workspace_id = $1 AND id = $2 AND status = 'pending'";
}
