//! `webhook_deliveries` on SQLite.

use super::SqliteStore;
use super::codec::ts;
use crate::{Result, WebhookStore, webhooks::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn webhook_delivery_record(
        &self,
        source: &str,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let r = sqlx::query(sql::RECORD)
            .bind(source)
            .bind(delivery_id)
            .bind(ts(now))
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn webhook_deliveries_purge_before(&self, before: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query(sql::PURGE)
            .bind(ts(before))
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }
}
