//! `workspace_config` and the `workspace_memory` key/value store on PostgreSQL.

use super::PostgresStore;
use crate::{ConfigStore, MemoryEntryRow, Result, config::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

fn entry(r: &PgRow) -> Result<MemoryEntryRow> {
    Ok(MemoryEntryRow {
        key: r.try_get("key")?,
        value: r.try_get("value")?,
        expires_at: r.try_get("expires_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl ConfigStore for PostgresStore {
    async fn config_get(&self, workspace_id: Uuid) -> Result<Option<Value>> {
        Ok(sqlx::query_scalar(sql::GET)
            .bind(workspace_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Shallow merge in one statement (`jsonb ||` of two objects).
    async fn config_merge(
        &self,
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn memory_kv_set(
        &self,
        workspace_id: Uuid,
        key: &str,
        value: &Value,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(sql::KV_SET)
            .bind(Uuid::new_v4())
            .bind(workspace_id)
            .bind(key)
            .bind(value)
            .bind(expires_at)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn memory_kv_get(
        &self,
        workspace_id: Uuid,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<MemoryEntryRow>> {
        let r = sqlx::query(sql::KV_GET)
            .bind(workspace_id)
            .bind(key)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(entry).transpose()
    }

    async fn memory_kv_list(
        &self,
        workspace_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<MemoryEntryRow>> {
        let rows = sqlx::query(sql::KV_LIST)
            .bind(workspace_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entry).collect()
    }

    async fn memory_kv_delete(&self, workspace_id: Uuid, key: &str) -> Result<bool> {
        let n = sqlx::query(sql::KV_DELETE)
            .bind(workspace_id)
            .bind(key)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
