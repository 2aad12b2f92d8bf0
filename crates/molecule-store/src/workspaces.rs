//! `workspaces` rows (joined with `canvas_layouts`): creation, the hierarchy,
//! guarded status transitions, registration and batched heartbeats.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::Runtime;
use molecule_types::{Transition, WorkspaceStatus};
use serde_json::Value;
use uuid::Uuid;

#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// Insert a workspace row and its canvas layout in one transaction.
    async fn workspace_insert(&self, ws: &NewWorkspace) -> Result<()>;

    /// Insert a workspace (and its layout) together with its seed (the
    /// files its first start writes) and its secrets (sealed), in one
    /// transaction: a provisioner that sees the row also sees what it
    /// starts with.
    async fn workspace_insert_seeded(
        &self,
        ws: &NewWorkspace,
        seed: &crate::SeedFiles,
        secrets: &[SealedSecret],
    ) -> Result<()>;

    /// Any row, removed included.
    async fn workspace_get(&self, id: Uuid) -> Result<Option<WorkspaceRow>>;

    /// Non-removed rows ordered by `created_at`, then id.
    async fn workspace_list(&self) -> Result<Vec<WorkspaceRow>>;

    /// Non-removed direct children of `parent`, or non-removed roots when
    /// `parent` is `None`; ordered by `created_at`.
    async fn workspace_list_children(&self, parent: Option<Uuid>) -> Result<Vec<WorkspaceRow>>;

    /// `(id, parent_id)` of every row, removed included: the hierarchy that the
    /// access rule walks. Used to warm the in-memory hierarchy cache.
    async fn workspace_hierarchy(&self) -> Result<Vec<(Uuid, Option<Uuid>)>>;

    /// The parent of one row (`None` = no such row, `Some(None)` = a root).
    async fn workspace_parent(&self, id: Uuid) -> Result<Option<Option<Uuid>>>;

    /// Apply a validated patch in one transaction: every field or none.
    /// Returns false when the row does not exist.
    async fn workspace_patch(
        &self,
        id: Uuid,
        patch: &WorkspacePatch,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Non-removed descendants of `id` (not `id` itself), depth-first order
    /// does not matter; each with its name.
    async fn workspace_descendants(&self, id: Uuid) -> Result<Vec<(Uuid, String)>>;

    /// In one transaction: mark every id `removed`, delete their canvas
    /// layouts and revoke their live tokens.
    async fn workspace_remove_many(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<()>;

    /// Conditional status write (compare-and-set): applies `transition`
    /// (status `to`, and `status_reason`) only when the current status is one
    /// it starts from. Returns whether a row changed.
    async fn workspace_transition(
        &self,
        id: Uuid,
        transition: Transition,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Registration upsert (api-contract §5.4): insert `{id, name=id, url,
    /// agent_card, status=online, last_heartbeat_at=now}` or, for an existing
    /// non-removed row, set agent_card, status online, heartbeat now and the
    /// url unless the stored url starts with `http://127.0.0.1`.
    /// Removed rows are left untouched.
    async fn workspace_register(
        &self,
        id: Uuid,
        url: &str,
        agent_card: &Value,
        now: DateTime<Utc>,
    ) -> Result<RegisterOutcome>;

    /// Write a batch of heartbeat statistics (coalesced by the caller) in
    /// one transaction; removed rows are skipped.
    async fn workspace_heartbeat_many(&self, beats: &[HeartbeatWrite]) -> Result<()>;

    /// Set the host-reachable `url` of a non-removed row (`""` clears it).
    /// False if none matched.
    async fn workspace_set_url(&self, id: Uuid, url: &str, now: DateTime<Utc>) -> Result<bool>;

    /// Replace the agent card of a non-removed row. False if none matched.
    async fn workspace_update_card(
        &self,
        id: Uuid,
        agent_card: &Value,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Record the A2A conformance probe's result on a non-removed row.
    /// False if none matched.
    async fn workspace_set_conformance(&self, id: Uuid, result: &Value) -> Result<bool>;

    /// Rows whose runtime is `external`, status online/degraded, and whose
    /// `COALESCE(last_heartbeat_at, updated_at)` is older than `before`.
    async fn workspace_list_stale_external(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<WorkspaceRow>>;

    /// Rows in one of `statuses`.
    async fn workspace_list_by_status(
        &self,
        statuses: &[WorkspaceStatus],
    ) -> Result<Vec<WorkspaceRow>>;
}

/// A `workspaces` row joined with its `canvas_layouts` row.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceRow {
    pub id: Uuid,
    pub name: String,
    pub role: Option<String>,
    pub tier: i32,
    pub status: WorkspaceStatus,
    pub status_reason: Option<String>,
    pub source_bundle_id: Option<String>,
    pub agent_card: Option<Value>,
    /// The last A2A conformance probe's result.
    pub a2a_conformance: Option<Value>,
    pub url: Option<String>,
    pub parent_id: Option<Uuid>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub last_error_rate: f64,
    pub last_sample_error: Option<String>,
    pub active_tasks: i32,
    pub uptime_seconds: i32,
    pub current_task: Option<String>,
    pub awareness_namespace: Option<String>,
    pub runtime: Runtime,
    pub workspace_dir: Option<String>,
    pub workspace_access: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// From `canvas_layouts`; 0 when there is no layout row.
    pub x: f64,
    pub y: f64,
    pub collapsed: bool,
}

/// A workspace secret as stored: its value sealed by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedSecret {
    pub key: String,
    pub value: Vec<u8>,
    pub encryption_version: i32,
}

/// What `workspace_insert` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWorkspace {
    pub id: Uuid,
    pub name: String,
    pub role: Option<String>,
    pub tier: i32,
    pub status: WorkspaceStatus,
    pub url: Option<String>,
    pub parent_id: Option<Uuid>,
    pub awareness_namespace: Option<String>,
    pub runtime: Runtime,
    pub workspace_dir: Option<String>,
    pub workspace_access: String,
    pub source_bundle_id: Option<String>,
    pub x: f64,
    pub y: f64,
    pub now: DateTime<Utc>,
}

/// A validated PATCH: `None` leaves a column alone. For nullable columns the
/// inner `Option` is the new value (`Some(None)` clears it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkspacePatch {
    pub name: Option<String>,
    pub role: Option<Option<String>>,
    pub tier: Option<i32>,
    pub parent_id: Option<Option<Uuid>>,
    pub runtime: Option<Runtime>,
    pub workspace_dir: Option<Option<String>>,
    /// Canvas position, upserted into `canvas_layouts`.
    pub position: Option<(f64, f64)>,
}

/// Result of the registration upsert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// A new row was created.
    Inserted,
    /// An existing row was updated; carries its status before the update.
    Updated { previous: WorkspaceStatus },
    /// The row is removed; nothing was written.
    SkippedRemoved,
}

/// The statistics a heartbeat writes.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatWrite {
    pub id: Uuid,
    pub error_rate: f64,
    pub sample_error: String,
    pub active_tasks: i32,
    pub uptime_seconds: i32,
    pub current_task: String,
    pub at: DateTime<Utc>,
}

/// SQL both backends run as written (the dialects differ elsewhere).
pub(crate) mod sql {
    pub(crate) const INSERT_WORKSPACE: &str = "INSERT INTO workspaces (id, name, role, tier, status, url, parent_id, \
             awareness_namespace, runtime, workspace_dir, workspace_access, source_bundle_id, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)";

    pub(crate) const INSERT_LAYOUT: &str =
        "INSERT INTO canvas_layouts (workspace_id, x, y) VALUES ($1, $2, $3)";

    pub(crate) const HIERARCHY: &str = "SELECT id, parent_id FROM workspaces";

    pub(crate) const PARENT: &str = "SELECT parent_id FROM workspaces WHERE id = $1";

    pub(crate) const UPSERT_LAYOUT: &str = "INSERT INTO canvas_layouts (workspace_id, x, y) VALUES ($1, $2, $3) \
                 ON CONFLICT (workspace_id) DO UPDATE SET x = excluded.x, y = excluded.y";

    pub(crate) const PATCH: &str = "UPDATE workspaces SET \
                 name = CASE WHEN $2 THEN $3 ELSE name END, \
                 role = CASE WHEN $4 THEN $5 ELSE role END, \
                 tier = CASE WHEN $6 THEN $7 ELSE tier END, \
                 parent_id = CASE WHEN $8 THEN $9 ELSE parent_id END, \
                 runtime = CASE WHEN $10 THEN $11 ELSE runtime END, \
                 workspace_dir = CASE WHEN $12 THEN $13 ELSE workspace_dir END, \
                 updated_at = $14 \
                 WHERE id = $1";

    pub(crate) const DESCENDANTS: &str = "WITH RECURSIVE d(id, name) AS ( \
               SELECT id, name FROM workspaces WHERE parent_id = $1 AND status <> 'removed' \
               UNION \
               SELECT w.id, w.name FROM workspaces w JOIN d ON w.parent_id = d.id \
               WHERE w.status <> 'removed' \
             ) SELECT id, name FROM d WHERE id <> $1";

    pub(crate) const REGISTER: &str = "UPDATE workspaces SET agent_card = $2, status = 'online', status_reason = NULL, \
             last_heartbeat_at = $3, updated_at = $3, \
             url = CASE WHEN substr(url, 1, 16) = 'http://127.0.0.1' THEN url ELSE $4 END \
             WHERE id = $1";

    pub(crate) const SET_URL: &str =
        "UPDATE workspaces SET url = $2, updated_at = $3 WHERE id = $1 AND status <> 'removed'";

    pub(crate) const SET_CONFORMANCE: &str = "UPDATE workspaces SET a2a_conformance = $2 \
             WHERE id = $1 AND status <> 'removed'";

    pub(crate) const UPDATE_CARD: &str = "UPDATE workspaces SET agent_card = $2, updated_at = $3 \
             WHERE id = $1 AND status <> 'removed'";
}
