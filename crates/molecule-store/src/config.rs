//! `workspace_config` (a JSON object per workspace) and the key/value
//! `workspace_memory`.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// `workspace_config.data`, `None` when there is no row.
    async fn config_get(&self, workspace_id: Uuid) -> Result<Option<Value>>;

    /// Shallow-merge the keys of `patch` (an object) into the stored object.
    async fn config_merge(
        &self,
        workspace_id: Uuid,
        patch: &serde_json::Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    async fn memory_kv_set(
        &self,
        workspace_id: Uuid,
        key: &str,
        value: &Value,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// A live entry (not expired at `now`).
    async fn memory_kv_get(
        &self,
        workspace_id: Uuid,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<MemoryEntryRow>>;

    /// Live entries by key.
    async fn memory_kv_list(
        &self,
        workspace_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<MemoryEntryRow>>;

    async fn memory_kv_delete(&self, workspace_id: Uuid, key: &str) -> Result<bool>;
}

/// A live `workspace_memory` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEntryRow {
    pub key: String,
    pub value: Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// SQL both backends run as written (the dialects differ elsewhere).
pub(crate) mod sql {
    pub(crate) const GET: &str = "SELECT data FROM workspace_config WHERE workspace_id = $1";

    pub(crate) const KV_SET: &str = "INSERT INTO workspace_memory (id, workspace_id, key, value, expires_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, key) DO UPDATE SET \
             value = excluded.value, expires_at = excluded.expires_at, updated_at = excluded.updated_at";

    pub(crate) const KV_GET: &str = "SELECT key, value, expires_at, updated_at FROM workspace_memory \
             WHERE workspace_id = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)";

    pub(crate) const KV_LIST: &str = "SELECT key, value, expires_at, updated_at FROM workspace_memory \
             WHERE workspace_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY key";

    pub(crate) const KV_DELETE: &str =
        "DELETE FROM workspace_memory WHERE workspace_id = $1 AND key = $2";
}
