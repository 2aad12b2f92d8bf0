//! `approval_requests` on SQLite.

use super::codec::{get_opt_json, get_opt_ts, get_ts, get_uuid, ts};
use super::{BEGIN_WRITE, SqliteStore};
use crate::{ApprovalRow, NewApproval, Result};
use chrono::{DateTime, Utc};
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
        status: r.try_get("status")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: get_opt_ts(r, "decided_at")?,
        created_at: get_ts(r, "created_at")?,
    })
}

pub(super) async fn insert(s: &SqliteStore, a: &NewApproval) -> Result<()> {
    sqlx::query(
        "INSERT INTO approval_requests (id, workspace_id, task_id, action, reason, context, \
         status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)",
    )
    .bind(a.id.to_string())
    .bind(a.workspace_id.to_string())
    .bind(&a.task_id)
    .bind(&a.action)
    .bind(&a.reason)
    .bind(a.context.to_string())
    .bind(ts(a.now))
    .execute(&s.writer)
    .await?;
    Ok(())
}

pub(super) async fn list(
    s: &SqliteStore,
    workspace_id: Uuid,
    limit: i64,
) -> Result<Vec<ApprovalRow>> {
    let rows = sqlx::query(concat!(
        select_approval!(),
        "WHERE a.workspace_id = $1 ORDER BY a.created_at DESC, a.rowid DESC LIMIT $2"
    ))
    .bind(workspace_id.to_string())
    .bind(limit)
    .fetch_all(&s.reader)
    .await?;
    rows.iter().map(row).collect()
}

pub(super) async fn decide(
    s: &SqliteStore,
    workspace_id: Uuid,
    id: Uuid,
    status: &str,
    decided_by: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE approval_requests SET status = $3, decided_by = $4, decided_at = $5 \
         WHERE workspace_id = $1 AND id = $2 AND status = 'pending'",
    )
    .bind(workspace_id.to_string())
    .bind(id.to_string())
    .bind(status)
    .bind(decided_by)
    .bind(ts(now))
    .execute(&s.writer)
    .await?
    .rows_affected();
    Ok(n > 0)
}

pub(super) async fn expire(
    s: &SqliteStore,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<ApprovalRow>> {
    let mut tx = s.writer.begin_with(BEGIN_WRITE).await?;
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

pub(super) async fn list_pending(s: &SqliteStore, limit: i64) -> Result<Vec<ApprovalRow>> {
    let rows = sqlx::query(concat!(
        select_approval!(),
        "WHERE a.status = 'pending' ORDER BY a.created_at, a.rowid LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(&s.reader)
    .await?;
    rows.iter().map(row).collect()
}
