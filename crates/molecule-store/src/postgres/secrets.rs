//! `workspace_secrets` and `global_secrets` on PostgreSQL. Values arrive
//! already sealed by the server, together with their `encryption_version`.

use crate::{Result, SecretRow};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use uuid::Uuid;

fn row(r: &PgRow) -> Result<SecretRow> {
    Ok(SecretRow {
        key: r.try_get("key")?,
        value: r.try_get("encrypted_value")?,
        encryption_version: r.try_get("encryption_version")?,
        created_at: r
            .try_get::<Option<DateTime<Utc>>, _>("created_at")?
            .unwrap_or_default(),
        updated_at: r
            .try_get::<Option<DateTime<Utc>>, _>("updated_at")?
            .unwrap_or_default(),
    })
}

pub(super) async fn set_workspace(
    pool: &PgPool,
    workspace_id: Uuid,
    key: &str,
    value: &[u8],
    version: i32,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO workspace_secrets (id, workspace_id, key, encrypted_value, \
         encryption_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
         ON CONFLICT (workspace_id, key) DO UPDATE SET encrypted_value = EXCLUDED.encrypted_value, \
         encryption_version = EXCLUDED.encryption_version, updated_at = EXCLUDED.updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(workspace_id)
    .bind(key)
    .bind(value)
    .bind(version)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn list_workspace(pool: &PgPool, workspace_id: Uuid) -> Result<Vec<SecretRow>> {
    let rows = sqlx::query(
        "SELECT key, encrypted_value, encryption_version, created_at, updated_at \
         FROM workspace_secrets WHERE workspace_id = $1 ORDER BY key",
    )
    .bind(workspace_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(row).collect()
}

pub(super) async fn delete_workspace(pool: &PgPool, workspace_id: Uuid, key: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM workspace_secrets WHERE workspace_id = $1 AND key = $2")
        .bind(workspace_id)
        .bind(key)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n > 0)
}

pub(super) async fn set_global(
    pool: &PgPool,
    key: &str,
    value: &[u8],
    version: i32,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO global_secrets (id, key, encrypted_value, encryption_version, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (key) DO UPDATE SET encrypted_value = EXCLUDED.encrypted_value, \
         encryption_version = EXCLUDED.encryption_version, updated_at = EXCLUDED.updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(key)
    .bind(value)
    .bind(version)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn list_global(pool: &PgPool) -> Result<Vec<SecretRow>> {
    let rows = sqlx::query(
        "SELECT key, encrypted_value, encryption_version, created_at, updated_at \
         FROM global_secrets ORDER BY key",
    )
    .fetch_all(pool)
    .await?;
    rows.iter().map(row).collect()
}

pub(super) async fn delete_global(pool: &PgPool, key: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM global_secrets WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n > 0)
}

pub(super) async fn workspaces_with_key(pool: &PgPool, key: &str) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT workspace_id FROM workspace_secrets WHERE key = $1 AND workspace_id IS NOT NULL",
    )
    .bind(key)
    .fetch_all(pool)
    .await?)
}
