//! Webhook deliveries already taken (`webhook_deliveries`): replay
//! protection for signed inbound webhooks (GitHub's `X-GitHub-Delivery`).
//! A delivery id is recorded once, after its signature was checked; a
//! second request with the same id is a replay.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Records `delivery_id` from `source`; `false` when it was recorded
    /// before (a replay).
    async fn webhook_delivery_record(
        &self,
        source: &str,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Forgets deliveries received before `before`; how many.
    async fn webhook_deliveries_purge_before(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// SQL both backends run as written.
pub(crate) mod sql {
    pub(crate) const RECORD: &str = "INSERT INTO webhook_deliveries (source, delivery_id, received_at) \
         VALUES ($1, $2, $3) ON CONFLICT (source, delivery_id) DO NOTHING";

    pub(crate) const PURGE: &str = "DELETE FROM webhook_deliveries WHERE received_at < $1";
}
