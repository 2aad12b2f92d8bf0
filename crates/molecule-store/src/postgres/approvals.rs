//! `approval_requests` on PostgreSQL.

use crate::{ApprovalRow, NewApproval, Result};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
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
        status: r.try_get("status")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) async fn insert(pool: &PgPool, a: &NewApproval) -> Result<()> {
    sqlx::query(
        "INSERT INTO approval_requests (id, workspace_id, task_id, action, reason, context, \
         status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)",
    )
    .bind(a.id)
    .bind(a.workspace_id)
    .bind(&a.task_id)
    .bind(&a.action)
    .bind(&a.reason)
    .bind(&a.context)
    .bind(a.now)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn list(
    pool: &PgPool,
    workspace_id: Uuid,
    limit: i64,
) -> Result<Vec<ApprovalRow>> {
    let rows = sqlx::query(concat!(
        select_approval!(),
        "WHERE a.workspace_id = $1 ORDER BY a.created_at DESC, a.id LIMIT $2"
    ))
    .bind(workspace_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(row).collect()
}

pub(super) async fn decide(
    pool: &PgPool,
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
    .bind(workspace_id)
    .bind(id)
    .bind(status)
    .bind(decided_by)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n > 0)
}

pub(super) async fn expire(
    pool: &PgPool,
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
    .fetch_all(pool)
    .await?;
    rows.iter().map(row).collect()
}

pub(super) async fn list_pending(pool: &PgPool, limit: i64) -> Result<Vec<ApprovalRow>> {
    let rows = sqlx::query(concat!(
        select_approval!(),
        "WHERE a.status = 'pending' ORDER BY a.created_at, a.id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(row).collect()
}
