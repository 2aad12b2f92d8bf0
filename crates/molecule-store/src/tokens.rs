//! `workspace_auth_tokens`: hashed bearer tokens, lookup, rotation and revocation.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn token_insert(
        &self,
        workspace_id: Uuid,
        token_hash: &[u8],
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// The workspace a live token (by SHA-256) is bound to; bumps
    /// `last_used_at` best-effort.
    async fn token_lookup(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Option<Uuid>>;

    /// Revoke every live token of the workspace and insert this one, in one
    /// transaction (credential rotation: the old token stops working the
    /// moment the new one exists).
    async fn token_replace(
        &self,
        workspace_id: Uuid,
        token_hash: &[u8],
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Whether the workspace has at least one live token.
    async fn token_has_live(&self, workspace_id: Uuid) -> Result<bool>;

    /// Number of live tokens platform-wide.
    async fn token_count_live(&self) -> Result<i64>;
}

/// SQL both backends run as written (the dialects differ elsewhere).
pub(crate) mod sql {
    pub(crate) const REPLACE: &str = "UPDATE workspace_auth_tokens SET revoked_at = $2 \
             WHERE workspace_id = $1 AND revoked_at IS NULL";

    pub(crate) const LOOKUP: &str = "SELECT workspace_id FROM workspace_auth_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL";

    pub(crate) const TOUCH: &str = "UPDATE workspace_auth_tokens SET last_used_at = $2 \
             WHERE token_hash = $1 AND revoked_at IS NULL";

    pub(crate) const HAS_LIVE: &str = "SELECT EXISTS (SELECT 1 FROM workspace_auth_tokens \
             WHERE workspace_id = $1 AND revoked_at IS NULL) AS live";

    pub(crate) const COUNT_LIVE: &str =
        "SELECT COUNT(*) AS n FROM workspace_auth_tokens WHERE revoked_at IS NULL";
}
