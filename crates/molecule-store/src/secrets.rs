//! `workspace_secrets` and `global_secrets`. Values arrive already sealed by the
//! server, together with their `encryption_version`.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Upsert a workspace secret (bytes and their format together).
    async fn secret_set_workspace(
        &self,
        workspace_id: Uuid,
        key: &str,
        value: &[u8],
        encryption_version: i32,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// The workspace's secrets ordered by key.
    async fn secret_list_workspace(&self, workspace_id: Uuid) -> Result<Vec<SecretRow>>;

    async fn secret_delete_workspace(&self, workspace_id: Uuid, key: &str) -> Result<bool>;

    async fn secret_set_global(
        &self,
        key: &str,
        value: &[u8],
        encryption_version: i32,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Global secrets ordered by key.
    async fn secret_list_global(&self) -> Result<Vec<SecretRow>>;

    async fn secret_delete_global(&self, key: &str) -> Result<bool>;

    /// Workspaces that hold a secret named `key` (they override the global).
    async fn secret_workspaces_with_key(&self, key: &str) -> Result<Vec<Uuid>>;
}

/// A secret as stored: the bytes and the format they are in. Only the
/// server's sealing code builds these, so the version always matches.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRow {
    pub key: String,
    pub value: Vec<u8>,
    pub encryption_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// SQL both backends run as written (the dialects differ elsewhere).
pub(crate) mod sql {
    pub(crate) const SET_WORKSPACE: &str = "INSERT INTO workspace_secrets (id, workspace_id, key, encrypted_value, \
             encryption_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (workspace_id, key) DO UPDATE SET encrypted_value = excluded.encrypted_value, \
             encryption_version = excluded.encryption_version, updated_at = excluded.updated_at";

    pub(crate) const LIST_WORKSPACE: &str = "SELECT key, encrypted_value, encryption_version, created_at, updated_at \
             FROM workspace_secrets WHERE workspace_id = $1 ORDER BY key";

    pub(crate) const DELETE_WORKSPACE: &str =
        "DELETE FROM workspace_secrets WHERE workspace_id = $1 AND key = $2";

    pub(crate) const SET_GLOBAL: &str = "INSERT INTO global_secrets (id, key, encrypted_value, encryption_version, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (key) DO UPDATE SET encrypted_value = excluded.encrypted_value, \
             encryption_version = excluded.encryption_version, updated_at = excluded.updated_at";

    pub(crate) const LIST_GLOBAL: &str = "SELECT key, encrypted_value, encryption_version, created_at, updated_at \
             FROM global_secrets ORDER BY key";

    pub(crate) const DELETE_GLOBAL: &str = "DELETE FROM global_secrets WHERE key = $1";

    pub(crate) const WORKSPACES_WITH_KEY: &str =
        "SELECT workspace_id FROM workspace_secrets WHERE key = $1 AND workspace_id IS NOT NULL";
}
