//! `workspace_auth_tokens` on PostgreSQL: insert, replace (rotation), lookup
//! by hash, liveness counts. Token generation and hashing belong to the server.

use crate::Result;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgPool;
use uuid::Uuid;

pub(super) async fn insert(
    pool: &PgPool,
    workspace_id: Uuid,
    token_hash: &[u8],
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    insert_on(pool, workspace_id, token_hash, prefix, now).await
}

/// The INSERT of one token, on a pool or inside a transaction.
async fn insert_on<'e, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(
    executor: E,
    workspace_id: Uuid,
    token_hash: &[u8],
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO workspace_auth_tokens (id, workspace_id, token_hash, prefix, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(workspace_id)
    .bind(token_hash)
    .bind(prefix)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

pub(super) async fn replace(
    pool: &PgPool,
    workspace_id: Uuid,
    token_hash: &[u8],
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE workspace_auth_tokens SET revoked_at = $2 \
         WHERE workspace_id = $1 AND revoked_at IS NULL",
    )
    .bind(workspace_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    insert_on(&mut *tx, workspace_id, token_hash, prefix, now).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn lookup(
    pool: &PgPool,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<Uuid>> {
    let row = sqlx::query(
        "SELECT workspace_id FROM workspace_auth_tokens \
         WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let id: Uuid = row.try_get("workspace_id")?;
    // Bookkeeping only: a failed bump must not fail authentication.
    if let Err(error) = sqlx::query(
        "UPDATE workspace_auth_tokens SET last_used_at = $2 \
         WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash)
    .bind(now)
    .execute(pool)
    .await
    {
        tracing::warn!(%error, workspace_id = %id, "token last_used_at not updated");
    }
    Ok(Some(id))
}

pub(super) async fn has_live(pool: &PgPool, workspace_id: Uuid) -> Result<bool> {
    let row = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM workspace_auth_tokens \
         WHERE workspace_id = $1 AND revoked_at IS NULL) AS live",
    )
    .bind(workspace_id)
    .fetch_one(pool)
    .await?;
    Ok(row.try_get("live")?)
}

pub(super) async fn count_live(pool: &PgPool) -> Result<i64> {
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM workspace_auth_tokens WHERE revoked_at IS NULL")
            .fetch_one(pool)
            .await?;
    Ok(row.try_get("n")?)
}
