//! `workspace_config` and the `workspace_memory` key/value store on SQLite.

use super::SqliteStore;
use super::codec::{get_opt_json, get_opt_ts, get_ts, ts};
use crate::{ConfigStore, MemoryEntryRow, Result, StoreError, config::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::Row;
use uuid::Uuid;

fn entry(r: &sqlx::sqlite::SqliteRow) -> Result<MemoryEntryRow> {
    Ok(MemoryEntryRow {
        key: r.try_get("key")?,
        value: get_opt_json(r, "value")?.unwrap_or(Value::Null),
        expires_at: get_opt_ts(r, "expires_at")?,
        updated_at: get_ts(r, "updated_at")?,
    })
}

#[async_trait]
impl ConfigStore for SqliteStore {
    async fn config_get(&self, workspace_id: Uuid) -> Result<Option<Value>> {
        let r = sqlx::query(sql::GET)
            .bind(workspace_id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        Ok(match r {
            Some(r) => get_opt_json(&r, "data")?,
            None => None,
        })
    }

    /// Read, merge and write in one write transaction (SQLite has no shallow
    /// JSON merge operator; `json_patch` merges nested objects and drops nulls).
    async fn config_merge(
        &self,
        workspace_id: Uuid,
        patch: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.writer.begin_with(super::BEGIN_WRITE).await?;
        let r = sqlx::query("SELECT data FROM workspace_config WHERE workspace_id = $1")
            .bind(workspace_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let mut data = match r
            .as_ref()
            .map(|r| get_opt_json(r, "data"))
            .transpose()?
            .flatten()
        {
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(StoreError::Corrupt(format!(
                    "workspace_config.data is not an object: {other}"
                )));
            }
            None => Map::new(),
        };
        for (k, v) in patch {
            data.insert(k.clone(), v.clone());
        }
        sqlx::query(
            "INSERT INTO workspace_config (workspace_id, data, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (workspace_id) DO UPDATE SET data = excluded.data, \
             updated_at = excluded.updated_at",
        )
        .bind(workspace_id.to_string())
        .bind(Value::Object(data).to_string())
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
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
            .bind(Uuid::new_v4().to_string())
            .bind(workspace_id.to_string())
            .bind(key)
            .bind(value.to_string())
            .bind(expires_at.map(ts))
            .bind(ts(now))
            .execute(&self.writer)
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
            .bind(workspace_id.to_string())
            .bind(key)
            .bind(ts(now))
            .fetch_optional(&self.reader)
            .await?;
        r.as_ref().map(entry).transpose()
    }

    async fn memory_kv_list(
        &self,
        workspace_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<MemoryEntryRow>> {
        let rows = sqlx::query(sql::KV_LIST)
            .bind(workspace_id.to_string())
            .bind(ts(now))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(entry).collect()
    }

    async fn memory_kv_delete(&self, workspace_id: Uuid, key: &str) -> Result<bool> {
        let n = sqlx::query(sql::KV_DELETE)
            .bind(workspace_id.to_string())
            .bind(key)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
