//! `webhook_deliveries` on PostgreSQL.

use super::PostgresStore;
use crate::{Result, WebhookStore, webhooks::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn webhook_delivery_record(
        &self,
        source: &str,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let r = sqlx::query(sql::RECORD)
            .bind(source)
            .bind(delivery_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn webhook_deliveries_purge_before(&self, before: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query(sql::PURGE)
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
