//! `approval_requests` on SQLite.

use super::codec::{get_opt_json, get_opt_ts, get_ts, get_uuid, ts};
use super::{BEGIN_WRITE, SqliteStore};
use crate::{ApprovalRow, ApprovalStore, NewApproval, Result, approvals::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::ApprovalState;
use molecule_types::WorkspaceId;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

macro_rules! select_approval {
    () => {
        "SELECT a.id, a.workspace_id, COALESCE(w.name, '') AS workspace_name, a.task_id, \
         a.action, a.reason, a.context, COALESCE(a.status, 'pending') AS status, a.decided_by, \
         a.decided_at, a.created_at \
         FROM approval_requests a LEFT JOIN workspaces w ON w.id = a.workspace_id "
    };
}

fn row(r: &SqliteRow) -> Result<ApprovalRow> {
    Ok(ApprovalRow {
        id: get_uuid(r, "id")?,
        workspace_id: get_uuid(r, "workspace_id")?,
        workspace_name: r.try_get("workspace_name")?,
        task_id: r.try_get("task_id")?,
        action: r.try_get("action")?,
        reason: r.try_get("reason")?,
        context: get_opt_json(r, "context")?,
        status: crate::word(r.try_get::<&str, _>("status")?)?,
        decided_by: r.try_get("decided_by")?,
        decided_at: get_opt_ts(r, "decided_at")?,
        created_at: get_ts(r, "created_at")?,
    })
}

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn approval_insert(&self, a: &NewApproval) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(a.id.to_string())
            .bind(a.workspace_id.to_string())
            .bind(&a.task_id)
            .bind(&a.action)
            .bind(&a.reason)
            .bind(a.context.to_string())
            .bind(ts(a.now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn approval_list(&self, workspace_id: Uuid, limit: i64) -> Result<Vec<ApprovalRow>> {
        let rows = sqlx::query(concat!(
            select_approval!(),
            "WHERE a.workspace_id = $1 ORDER BY a.created_at DESC, a.rowid DESC LIMIT $2"
        ))
        .bind(workspace_id.to_string())
        .bind(limit)
        .fetch_all(&self.reader)
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
            .bind(workspace_id.uuid().to_string())
            .bind(id.to_string())
            .bind(status.as_str())
            .bind(decided_by)
            .bind(ts(now))
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn approval_expire(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ApprovalRow>> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE approval_requests SET status = 'denied', decided_by = 'auto-expired', \
             decided_at = $2 WHERE status = 'pending' AND created_at < $1 RETURNING id",
        )
        .bind(ts(before))
        .bind(ts(now))
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let r = sqlx::query(concat!(select_approval!(), "WHERE a.id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            out.push(row(&r)?);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn approval_list_pending(&self, limit: i64) -> Result<Vec<ApprovalRow>> {
        let rows = sqlx::query(concat!(
            select_approval!(),
            "WHERE a.status = 'pending' ORDER BY a.created_at, a.rowid LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row).collect()
    }
}
