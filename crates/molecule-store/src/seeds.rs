//! `workspace_seeds`: the files the next provisioning of a workspace writes
//! into its `/configs`, kept in the database so a platform restart between
//! creation and provisioning loses nothing.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Relative path → contents.
pub type SeedFiles = BTreeMap<String, String>;

#[async_trait]
pub trait SeedStore: Send + Sync {
    /// Set (replace) the seed of a workspace.
    async fn seed_put(
        &self,
        workspace_id: Uuid,
        files: &SeedFiles,
        now: DateTime<Utc>,
    ) -> Result<()>;

    async fn seed_get(&self, workspace_id: Uuid) -> Result<Option<Seed>>;

    /// Drop the seed once written, unless it was replaced since it was read
    /// (`created_at` is the one [`SeedStore::seed_get`] answered): a
    /// restart that asked for a template meanwhile keeps its own.
    async fn seed_clear(&self, workspace_id: Uuid, created_at: DateTime<Utc>) -> Result<()>;
}

/// A stored seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub files: SeedFiles,
    pub created_at: DateTime<Utc>,
}

pub(crate) mod sql {
    pub(crate) const PUT: &str = "INSERT INTO workspace_seeds (workspace_id, files, created_at) \
         VALUES ($1, $2, $3) ON CONFLICT (workspace_id) DO UPDATE SET \
         files = excluded.files, created_at = excluded.created_at";

    pub(crate) const GET: &str =
        "SELECT files, created_at FROM workspace_seeds WHERE workspace_id = $1";

    pub(crate) const CLEAR: &str =
        "DELETE FROM workspace_seeds WHERE workspace_id = $1 AND created_at = $2";
}
