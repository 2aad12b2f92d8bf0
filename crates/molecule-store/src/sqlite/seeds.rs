//! `workspace_seeds` on SQLite (files as a JSON text object).

use super::SqliteStore;
use super::codec::{get_ts, ts};
use crate::{Result, Seed, SeedFiles, SeedStore, StoreError, seeds::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

#[async_trait]
impl SeedStore for SqliteStore {
    async fn seed_put(
        &self,
        workspace_id: Uuid,
        files: &SeedFiles,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let text = serde_json::to_string(files)
            .map_err(|e| StoreError::Corrupt(format!("seed files: {e}")))?;
        sqlx::query(sql::PUT)
            .bind(workspace_id.to_string())
            .bind(text)
            .bind(ts(now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn seed_get(&self, workspace_id: Uuid) -> Result<Option<Seed>> {
        let r = sqlx::query(sql::GET)
            .bind(workspace_id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        r.map(|r| {
            let text: String = r.try_get("files")?;
            let files = serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("workspace_seeds.files: {e}")))?;
            Ok(Seed {
                files,
                created_at: get_ts(&r, "created_at")?,
            })
        })
        .transpose()
    }

    async fn seed_clear(&self, workspace_id: Uuid, created_at: DateTime<Utc>) -> Result<()> {
        sqlx::query(sql::CLEAR)
            .bind(workspace_id.to_string())
            .bind(ts(created_at))
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
