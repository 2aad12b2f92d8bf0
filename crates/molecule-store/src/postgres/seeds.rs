//! `workspace_seeds` on PostgreSQL (files as a `jsonb` object).

use super::PostgresStore;
use crate::{Result, Seed, SeedFiles, SeedStore, StoreError, seeds::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

#[async_trait]
impl SeedStore for PostgresStore {
    async fn seed_put(
        &self,
        workspace_id: Uuid,
        files: &SeedFiles,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let json = serde_json::to_value(files)
            .map_err(|e| StoreError::Corrupt(format!("seed files: {e}")))?;
        sqlx::query(sql::PUT)
            .bind(workspace_id)
            .bind(json)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn seed_get(&self, workspace_id: Uuid) -> Result<Option<Seed>> {
        let r = sqlx::query(sql::GET)
            .bind(workspace_id)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| {
            let json: Value = r.try_get("files")?;
            let files = serde_json::from_value(json)
                .map_err(|e| StoreError::Corrupt(format!("workspace_seeds.files: {e}")))?;
            Ok(Seed {
                files,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn seed_clear(&self, workspace_id: Uuid, created_at: DateTime<Utc>) -> Result<()> {
        sqlx::query(sql::CLEAR)
            .bind(workspace_id)
            .bind(created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
