//! `agent_memories`: scoped memories and their search.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::WorkspaceId;
use uuid::Uuid;

#[async_trait]
pub trait MemoryStore: Send + Sync {
    async fn memory_insert(&self, m: &MemoryRow) -> Result<()>;

    /// Delete a memory owned by `workspace_id`.
    async fn memory_delete(&self, workspace_id: WorkspaceId, id: Uuid) -> Result<bool>;

    async fn memory_search(&self, q: &MemoryQuery) -> Result<Vec<MemoryRow>>;
}

/// An `agent_memories` row.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub content: String,
    pub scope: String,
    pub namespace: String,
    pub created_at: DateTime<Utc>,
}

/// Which `agent_memories` rows a search may return; the server computes the
/// visibility (authors), the store only filters and ranks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemoryQuery {
    /// Rows of this scope only (`None`: any scope).
    pub scope: Option<String>,
    /// Rows written by one of these workspaces (`None`: any author).
    pub authors: Option<Vec<Uuid>>,
    pub namespace: Option<String>,
    pub text: MemoryText,
    pub limit: i64,
}

/// How `q` filters memories.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum MemoryText {
    /// Newest first.
    #[default]
    All,
    /// Case-insensitive substring (wildcards in the input are literal).
    Substring(String),
    /// Full-text (SQLite FTS5 porter / PostgreSQL english tsvector), ranked.
    FullText(String),
}

/// SQL both backends run as written (the dialects differ elsewhere).
pub(crate) mod sql {
    pub(crate) const INSERT: &str = "INSERT INTO agent_memories (id, workspace_id, content, scope, namespace, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)";

    pub(crate) const DELETE: &str =
        "DELETE FROM agent_memories WHERE workspace_id = $1 AND id = $2";
}
