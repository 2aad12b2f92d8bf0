//! `workspace_config` and the `workspace_memory` key/value store on PostgreSQL.

use crate::{MemoryEntryRow, Result};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use uuid::Uuid;

pub(super) async fn get(pool: &PgPool, workspace_id: Uuid) -> Result<Option<Value>> {
    Ok(
        sqlx::query_scalar("SELECT data FROM workspace_config WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Shallow merge in one statement (`jsonb ||` of two objects).
pub(super) async fn merge(
    pool: &PgPool,
    workspace_id: Uuid,
    patch: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO workspace_config (workspace_id, data, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (workspace_id) DO UPDATE SET data = workspace_config.data || EXCLUDED.data, \
         updated_at = EXCLUDED.updated_at",
    )
    .bind(workspace_id)
    .bind(Value::Object(patch.clone()))
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn kv_set(
    pool: &PgPool,
    workspace_id: Uuid,
    key: &str,
    value: &Value,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO workspace_memory (id, workspace_id, key, value, expires_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, key) DO UPDATE SET \
         value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(workspace_id)
    .bind(key)
    .bind(value)
    .bind(expires_at)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

fn entry(r: &PgRow) -> Result<MemoryEntryRow> {
    Ok(MemoryEntryRow {
        key: r.try_get("key")?,
        value: r.try_get("value")?,
        expires_at: r.try_get("expires_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(super) async fn kv_get(
    pool: &PgPool,
    workspace_id: Uuid,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<MemoryEntryRow>> {
    let r = sqlx::query(
        "SELECT key, value, expires_at, updated_at FROM workspace_memory \
         WHERE workspace_id = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)",
    )
    .bind(workspace_id)
    .bind(key)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    r.as_ref().map(entry).transpose()
}

pub(super) async fn kv_list(
    pool: &PgPool,
    workspace_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<MemoryEntryRow>> {
    let rows = sqlx::query(
        "SELECT key, value, expires_at, updated_at FROM workspace_memory \
         WHERE workspace_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY key",
    )
    .bind(workspace_id)
    .bind(now)
    .fetch_all(pool)
    .await?;
    rows.iter().map(entry).collect()
}

pub(super) async fn kv_delete(pool: &PgPool, workspace_id: Uuid, key: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM workspace_memory WHERE workspace_id = $1 AND key = $2")
        .bind(workspace_id)
        .bind(key)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n > 0)
}
