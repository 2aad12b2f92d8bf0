//! Chat channels of a workspace (`workspace_channels`, one per workspace
//! and type) and the recent conversation of each chat
//! (`channel_history`, bounded and expiring: the reference kept it in
//! Redis, which this platform does not have).

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub channel_type: String,
    /// As stored: secret fields sealed (`ec1:…`) when a key is configured.
    pub config: Value,
    pub enabled: bool,
    pub allowed_users: Vec<String>,
    pub message_count: i64,
    pub last_message_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `PATCH /workspaces/:id/channels/:cid`: what changes.
#[derive(Debug, Clone, Default)]
pub struct ChannelPatch {
    pub config: Option<Value>,
    pub allowed_users: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// One remembered turn of a chat.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub role: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// A duplicate (workspace, type) is [`crate::StoreError::Conflict`].
    async fn channel_insert(&self, row: &ChannelRow) -> Result<()>;
    async fn channel_list(&self, workspace_id: Uuid) -> Result<Vec<ChannelRow>>;
    async fn channel_get(&self, id: Uuid) -> Result<Option<ChannelRow>>;
    /// Every enabled channel (the manager's and the webhooks' view).
    async fn channel_enabled(&self) -> Result<Vec<ChannelRow>>;
    /// `false` when no channel `id` belongs to `workspace_id`.
    async fn channel_update(
        &self,
        id: Uuid,
        workspace_id: Uuid,
        patch: &ChannelPatch,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    async fn channel_delete(&self, id: Uuid, workspace_id: Uuid) -> Result<bool>;
    /// One more message through the channel.
    async fn channel_counted(&self, id: Uuid, now: DateTime<Utc>) -> Result<()>;
    /// Appends to a chat's history, keeping its newest `keep` entries.
    async fn channel_history_push(
        &self,
        channel_id: Uuid,
        chat_id: &str,
        entry: &HistoryEntry,
        keep: i64,
    ) -> Result<()>;
    /// A chat's entries since `since`, oldest first.
    async fn channel_history(
        &self,
        channel_id: Uuid,
        chat_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<HistoryEntry>>;
    async fn channel_history_clear(&self, channel_id: Uuid, chat_id: &str) -> Result<()>;
    async fn channel_history_purge_before(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// SQL both backends run as written.
pub(crate) mod sql {
    /// A channel read with `$filter` (a literal) after the table.
    macro_rules! select_channel {
        ($filter:literal) => {
            concat!(
                "SELECT id, workspace_id, channel_type, channel_config, enabled, \
                 COALESCE(allowed_users, '[]') AS allowed_users, message_count, \
                 last_message_at, created_at, updated_at FROM workspace_channels ",
                $filter
            )
        };
    }
    pub(crate) use select_channel;

    pub(crate) const INSERT: &str = "INSERT INTO workspace_channels (id, workspace_id, channel_type, \
         channel_config, enabled, allowed_users, message_count, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)";

    pub(crate) const DELETE: &str =
        "DELETE FROM workspace_channels WHERE id = $1 AND workspace_id = $2";

    pub(crate) const COUNTED: &str = "UPDATE workspace_channels SET message_count = message_count + 1, \
         last_message_at = $2 WHERE id = $1";

    pub(crate) const HISTORY_PUSH: &str = "INSERT INTO channel_history (channel_id, chat_id, role, text, created_at) \
         VALUES ($1, $2, $3, $4, $5)";

    pub(crate) const HISTORY_TRIM: &str = "DELETE FROM channel_history WHERE channel_id = $1 AND chat_id = $2 \
         AND id NOT IN (SELECT id FROM channel_history WHERE channel_id = $1 AND chat_id = $2 \
         ORDER BY created_at DESC, id DESC LIMIT $3)";

    pub(crate) const HISTORY: &str = "SELECT role, text, created_at FROM channel_history \
         WHERE channel_id = $1 AND chat_id = $2 AND created_at >= $3 ORDER BY created_at, id";

    pub(crate) const HISTORY_CLEAR: &str =
        "DELETE FROM channel_history WHERE channel_id = $1 AND chat_id = $2";

    pub(crate) const HISTORY_PURGE: &str = "DELETE FROM channel_history WHERE created_at < $1";
}
