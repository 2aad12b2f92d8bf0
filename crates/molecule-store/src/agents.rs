//! `agents`: the model assigned to a workspace (api-contract §5.13). One
//! `active` row per workspace, enforced by a partial unique index; replaced
//! and removed rows are kept with their reason.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::WorkspaceId;
use uuid::Uuid;

#[async_trait]
pub trait AgentStore: Send + Sync {
    /// The active agent of a workspace.
    async fn agent_active(&self, workspace: WorkspaceId) -> Result<Option<AgentRow>>;

    /// A new active agent; `None` when the workspace already has one.
    async fn agent_assign(
        &self,
        workspace: WorkspaceId,
        model: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AgentRow>>;

    /// Retire the active agent (`replaced`, `model_replaced`) and assign a
    /// new one, in one transaction: `(old, new)`, or `None` when there was
    /// no active agent.
    async fn agent_replace(
        &self,
        workspace: WorkspaceId,
        model: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(AgentRow, AgentRow)>>;

    /// Retire the active agent (`removed`, `manual_removal`); `None` when
    /// there was none.
    async fn agent_remove(
        &self,
        workspace: WorkspaceId,
        now: DateTime<Utc>,
    ) -> Result<Option<AgentRow>>;

    /// Re-point the active agent of `from` to `to`, in one transaction.
    async fn agent_move(&self, from: WorkspaceId, to: WorkspaceId) -> Result<AgentMove>;
}

/// An `agents` row.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub model: String,
}

/// What [`AgentStore::agent_move`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentMove {
    Moved(AgentRow),
    /// The target already has an active agent; nothing changed.
    TargetTaken,
    /// The source has no active agent; nothing changed.
    NoSource,
}

/// SQL both backends run as written.
pub(crate) mod sql {
    pub(crate) const ACTIVE: &str = "SELECT id, workspace_id, model FROM agents \
         WHERE workspace_id = $1 AND status = 'active'";

    /// Conflicts on the partial unique index of active rows.
    pub(crate) const ASSIGN: &str = "INSERT INTO agents (id, workspace_id, model, status, created_at) \
         VALUES ($1, $2, $3, 'active', $4) \
         ON CONFLICT (workspace_id) WHERE status = 'active' DO NOTHING";

    /// `$3` is the new status, `$4` the reason.
    pub(crate) const RETIRE: &str = "UPDATE agents SET status = $3, removed_at = $2, removal_reason = $4 \
         WHERE workspace_id = $1 AND status = 'active' RETURNING id, workspace_id, model";

    pub(crate) const MOVE: &str = "UPDATE agents SET workspace_id = $2 \
         WHERE workspace_id = $1 AND status = 'active' RETURNING id, workspace_id, model";
}
