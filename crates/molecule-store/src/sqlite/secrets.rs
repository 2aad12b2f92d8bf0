//! `workspace_secrets` and `global_secrets` on SQLite. Values arrive already
//! sealed by the server, together with their `encryption_version`.

use super::SqliteStore;
use super::codec::{get_ts, get_uuid, ts};
use crate::{Result, SecretRow, SecretStore, secrets::sql};
use async_trait::async_trait;
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

#[async_trait]
impl SecretStore for SqliteStore {
    async fn secret_set_workspace(
        &self,
        workspace_id: Uuid,
        key: &str,
        value: &[u8],
        version: i32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(sql::SET_WORKSPACE)
            .bind(Uuid::new_v4().to_string())
            .bind(workspace_id.to_string())
            .bind(key)
            .bind(value)
            .bind(version)
            .bind(ts(now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn secret_list_workspace(&self, workspace_id: Uuid) -> Result<Vec<SecretRow>> {
        let rows = sqlx::query(sql::LIST_WORKSPACE)
            .bind(workspace_id.to_string())
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(row).collect()
    }

    async fn secret_delete_workspace(&self, workspace_id: Uuid, key: &str) -> Result<bool> {
        let n = sqlx::query(sql::DELETE_WORKSPACE)
            .bind(workspace_id.to_string())
            .bind(key)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn secret_set_global(
        &self,
        key: &str,
        value: &[u8],
        version: i32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(sql::SET_GLOBAL)
            .bind(Uuid::new_v4().to_string())
            .bind(key)
            .bind(value)
            .bind(version)
            .bind(ts(now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn secret_list_global(&self) -> Result<Vec<SecretRow>> {
        let rows = sqlx::query(sql::LIST_GLOBAL)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(row).collect()
    }

    async fn secret_delete_global(&self, key: &str) -> Result<bool> {
        let n = sqlx::query(sql::DELETE_GLOBAL)
            .bind(key)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn secret_workspaces_with_key(&self, key: &str) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(sql::WORKSPACES_WITH_KEY)
            .bind(key)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(|r| get_uuid(r, "workspace_id")).collect()
    }
}
