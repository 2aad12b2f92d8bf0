//! `workspace_auth_tokens` on SQLite: insert, replace (rotation), lookup by
//! hash, liveness counts. Token generation and hashing belong to the server.

use super::SqliteStore;
use super::codec::{get_uuid, ts};
use crate::{Result, TokenStore, tokens::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

/// The INSERT of one token, on a pool or inside a transaction.
async fn insert_on<'e, E: sqlx::Executor<'e, Database = sqlx::Sqlite>>(
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
    .bind(Uuid::new_v4().to_string())
    .bind(workspace_id.to_string())
    .bind(token_hash)
    .bind(prefix)
    .bind(ts(now))
    .execute(executor)
    .await?;
    Ok(())
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn token_insert(
        &self,
        workspace_id: Uuid,
        token_hash: &[u8],
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        insert_on(&self.writer, workspace_id, token_hash, prefix, now).await
    }

    async fn token_replace(
        &self,
        workspace_id: Uuid,
        token_hash: &[u8],
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(sql::REPLACE)
            .bind(workspace_id.to_string())
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        insert_on(&mut *tx, workspace_id, token_hash, prefix, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_lookup(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Option<Uuid>> {
        let row = sqlx::query(sql::LOOKUP)
            .bind(token_hash)
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let id = get_uuid(&row, "workspace_id")?;
        // Bookkeeping only: a failed bump must not fail authentication.
        if let Err(error) = sqlx::query(sql::TOUCH)
            .bind(token_hash)
            .bind(ts(now))
            .execute(&self.writer)
            .await
        {
            tracing::warn!(%error, workspace_id = %id, "token last_used_at not updated");
        }
        Ok(Some(id))
    }

    async fn token_has_live(&self, workspace_id: Uuid) -> Result<bool> {
        let row = sqlx::query(sql::HAS_LIVE)
            .bind(workspace_id.to_string())
            .fetch_one(&self.reader)
            .await?;
        Ok(row.try_get("live")?)
    }

    async fn token_count_live(&self) -> Result<i64> {
        let row = sqlx::query(sql::COUNT_LIVE).fetch_one(&self.reader).await?;
        Ok(row.try_get("n")?)
    }
}
