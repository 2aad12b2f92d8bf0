//! `approval_requests` on PostgreSQL.

use super::PostgresStore;
use crate::{ApprovalRow, ApprovalStore, NewApproval, Result, approvals::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::ApprovalState;
use molecule_types::WorkspaceId;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

macro_rules! select_approval {
    () => {
        "SELECT a.id, a.workspace_id, COALESCE(w.name, '') AS workspace_name, a.task_id, \
         a.action, a.reason, a.context, COALESCE(a.status, 'pending') AS status, a.decided_by, \
         a.decided_at, a.created_at \
         FROM approval_requests a LEFT JOIN workspaces w ON w.id = a.workspace_id "
    };
}

fn row(r: &PgRow) -> Result<ApprovalRow> {
    Ok(ApprovalRow {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        workspace_name: r.try_get("workspace_name")?,
        task_id: r.try_get("task_id")?,
        action: r.try_get("action")?,
        reason: r.try_get("reason")?,
        context: r.try_get("context")?,
        status: crate::word(r.try_get::<&str, _>("status")?)?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        created_at: r.try_get("created_at")?,
    })
}

#[async_trait]
impl ApprovalStore for PostgresStore {
    async fn approval_insert(&self, a: &NewApproval) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(a.id)
            .bind(a.workspace_id)
            .bind(&a.task_id)
            .bind(&a.action)
            .bind(&a.reason)
            .bind(&a.context)
            .bind(a.now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn approval_list(&self, workspace_id: Uuid, limit: i64) -> Result<Vec<ApprovalRow>> {
        let rows = sqlx::query(concat!(
            select_approval!(),
            "WHERE a.workspace_id = $1 ORDER BY a.created_at DESC, a.id LIMIT $2"
        ))
        .bind(workspace_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    async fn approval_decide(
        &self,
        workspace_id: WorkspaceId,
        id: Uuid,
        status: ApprovalState,
        decided_by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = sqlx::query(sql::DECIDE)
            .bind(workspace_id.uuid())
            .bind(id)
            .bind(status.as_str())
            .bind(decided_by)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn approval_expire(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ApprovalRow>> {
        let rows = sqlx::query(
            "WITH expired AS (UPDATE approval_requests SET status = 'denied', \
             decided_by = 'auto-expired', decided_at = $2 \
             WHERE status = 'pending' AND created_at < $1 RETURNING *) \
             SELECT a.id, a.workspace_id, COALESCE(w.name, '') AS workspace_name, a.task_id, \
             a.action, a.reason, a.context, a.status, a.decided_by, a.decided_at, a.created_at \
             FROM expired a LEFT JOIN workspaces w ON w.id = a.workspace_id",
        )
        .bind(before)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    async fn approval_list_pending(&self, limit: i64) -> Result<Vec<ApprovalRow>> {
        let rows = sqlx::query(concat!(
            select_approval!(),
            "WHERE a.status = 'pending' ORDER BY a.created_at, a.id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }
}
