//! `workspace_secrets` and `global_secrets` on SQLite. Values arrive already
//! sealed by the server, together with their `encryption_version`.

use super::SqliteStore;
use super::codec::{get_ts, get_uuid, ts};
use crate::{Result, SecretRow};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

fn row(r: &SqliteRow) -> Result<SecretRow> {
    Ok(SecretRow {
        key: r.try_get("key")?,
        value: r.try_get("encrypted_value")?,
        encryption_version: r.try_get("encryption_version")?,
        created_at: get_ts(r, "created_at")?,
        updated_at: get_ts(r, "updated_at")?,
    })
}

pub(super) async fn set_workspace(
    s: &SqliteStore,
    workspace_id: Uuid,
    key: &str,
    value: &[u8],
    version: i32,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO workspace_secrets (id, workspace_id, key, encrypted_value, \
         encryption_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
         ON CONFLICT (workspace_id, key) DO UPDATE SET encrypted_value = excluded.encrypted_value, \
         encryption_version = excluded.encryption_version, updated_at = excluded.updated_at",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(workspace_id.to_string())
    .bind(key)
    .bind(value)
    .bind(version)
    .bind(ts(now))
    .execute(&s.writer)
    .await?;
    Ok(())
}

pub(super) async fn list_workspace(s: &SqliteStore, workspace_id: Uuid) -> Result<Vec<SecretRow>> {
    let rows = sqlx::query(
        "SELECT key, encrypted_value, encryption_version, created_at, updated_at \
         FROM workspace_secrets WHERE workspace_id = $1 ORDER BY key",
    )
    .bind(workspace_id.to_string())
    .fetch_all(&s.reader)
    .await?;
    rows.iter().map(row).collect()
}

pub(super) async fn delete_workspace(
    s: &SqliteStore,
    workspace_id: Uuid,
    key: &str,
) -> Result<bool> {
    let n = sqlx::query("DELETE FROM workspace_secrets WHERE workspace_id = $1 AND key = $2")
        .bind(workspace_id.to_string())
        .bind(key)
        .execute(&s.writer)
        .await?
        .rows_affected();
    Ok(n > 0)
}

pub(super) async fn set_global(
    s: &SqliteStore,
    key: &str,
    value: &[u8],
    version: i32,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO global_secrets (id, key, encrypted_value, encryption_version, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (key) DO UPDATE SET encrypted_value = excluded.encrypted_value, \
         encryption_version = excluded.encryption_version, updated_at = excluded.updated_at",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(key)
    .bind(value)
    .bind(version)
    .bind(ts(now))
    .execute(&s.writer)
    .await?;
    Ok(())
}

pub(super) async fn list_global(s: &SqliteStore) -> Result<Vec<SecretRow>> {
    let rows = sqlx::query(
        "SELECT key, encrypted_value, encryption_version, created_at, updated_at \
         FROM global_secrets ORDER BY key",
    )
    .fetch_all(&s.reader)
    .await?;
    rows.iter().map(row).collect()
}

pub(super) async fn delete_global(s: &SqliteStore, key: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM global_secrets WHERE key = $1")
        .bind(key)
        .execute(&s.writer)
        .await?
        .rows_affected();
    Ok(n > 0)
}

pub(super) async fn workspaces_with_key(s: &SqliteStore, key: &str) -> Result<Vec<Uuid>> {
    let rows = sqlx::query(
        "SELECT workspace_id FROM workspace_secrets WHERE key = $1 AND workspace_id IS NOT NULL",
    )
    .bind(key)
    .fetch_all(&s.reader)
    .await?;
    rows.iter().map(|r| get_uuid(r, "workspace_id")).collect()
}
