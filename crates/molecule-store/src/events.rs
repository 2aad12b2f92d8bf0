//! `structure_events`: the event log.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

#[async_trait]
pub trait EventStore: Send + Sync {
    async fn event_insert(&self, event: &NewEvent) -> Result<()>;

    /// Newest first, at most `limit`, optionally for one workspace.
    async fn event_list(&self, workspace_id: Option<Uuid>, limit: i64) -> Result<Vec<EventRow>>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: String,
    pub workspace_id: Option<Uuid>,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub id: Uuid,
    pub event_type: String,
    pub workspace_id: Option<Uuid>,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

/// SQL both backends run as written (the dialects differ elsewhere).
pub(crate) mod sql {
    pub(crate) const INSERT: &str = "INSERT INTO structure_events (id, event_type, workspace_id, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5)";

    pub(crate) const LIST_OF_WORKSPACE: &str = "SELECT id, event_type, workspace_id, payload, created_at FROM structure_events \
                     WHERE workspace_id = $1 ORDER BY created_at DESC, id LIMIT $2";

    pub(crate) const LIST_ALL: &str = "SELECT id, event_type, workspace_id, payload, created_at FROM structure_events \
                     ORDER BY created_at DESC, id LIMIT $1";
}
