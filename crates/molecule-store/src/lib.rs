//! Persistence for Molecule. One [`Store`] trait, two native backends:
//! embedded SQLite (WAL, the default) and PostgreSQL. Both run the same
//! logical schema (data-and-lifecycle.md §1) through their own versioned
//! migrations, applied once, and both pass one conformance suite
//! (`tests/conformance.rs`).
//!
//! The store knows rows, not HTTP views and not business rules: status
//! transitions are decided in the server's `app` layer and only *written*
//! here, with the guards the caller asks for.

mod postgres;
mod resource_rows;
mod rows;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

pub use molecule_types::{Transition, WorkspaceStatus};
pub use postgres::PostgresStore;
pub use resource_rows::*;
pub use rows::*;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A unique constraint refused the write (e.g. a schedule name in use).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unsupported database url {0:?}: expected sqlite:… or postgres://…")]
    UnsupportedUrl(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e.as_database_error() {
            Some(d) if d.is_unique_violation() => StoreError::Conflict(d.message().to_string()),
            _ => StoreError::Db(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Open the store named by `url` and apply pending migrations.
/// `postgres://` or `postgresql://` selects PostgreSQL; `sqlite:<path>` the
/// embedded backend (file created when missing).
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else if let Some(path) = url.strip_prefix("sqlite:") {
        Ok(Arc::new(
            SqliteStore::open(std::path::Path::new(path.trim_start_matches("//"))).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

/// Every persistent operation of the platform. Methods are named resource
/// first, verb second. All timestamps that matter for ordering are passed in
/// by the caller (`now`) so tests can reason about them.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;

    // ---- workspaces -------------------------------------------------------

    /// Insert a workspace row and its canvas layout in one transaction.
    async fn workspace_insert(&self, ws: &NewWorkspace) -> Result<()>;

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

    // ---- auth tokens ------------------------------------------------------

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

    // ---- events -----------------------------------------------------------

    async fn event_insert(&self, event: &NewEvent) -> Result<()>;

    /// Newest first, at most `limit`, optionally for one workspace.
    async fn event_list(&self, workspace_id: Option<Uuid>, limit: i64) -> Result<Vec<EventRow>>;

    // ----- activity_logs -----

    /// Insert a batch in one transaction; rows whose workspace is gone and
    /// idempotency-key duplicates are skipped. Returns the rows written.
    async fn activity_insert_many(&self, rows: &[NewActivity]) -> Result<u64>;

    /// Insert one row now. False when the (workspace, idempotency key) pair
    /// is taken (or the workspace is gone): nothing was written.
    async fn activity_insert(&self, row: &NewActivity) -> Result<bool>;

    /// The row holding `key` for `workspace_id`, if any.
    async fn activity_by_idempotency_key(
        &self,
        workspace_id: Uuid,
        key: &str,
    ) -> Result<Option<ActivityRow>>;

    async fn activity_delete(&self, id: Uuid) -> Result<bool>;

    /// Newest first, filtered.
    async fn activity_list(&self, q: &ActivityQuery) -> Result<Vec<ActivityRow>>;

    /// The `delegate` tracking row of `delegation_id` on `workspace_id`.
    async fn activity_delegation(
        &self,
        workspace_id: Uuid,
        delegation_id: &str,
    ) -> Result<Option<ActivityRow>>;

    /// Tracking rows of delegations the platform dispatches itself
    /// (`request_body.dispatched_by = "platform"`) that are still `pending`
    /// or `dispatched`, oldest first, at most `limit`.
    async fn activity_open_delegations(&self, limit: i64) -> Result<Vec<ActivityRow>>;

    /// Change the status of a delegation's tracking row(s); returns how many
    /// changed.
    async fn activity_delegation_update(&self, u: &DelegationUpdate<'_>) -> Result<u64>;

    /// Retention: delete every row created before `before`.
    async fn activity_purge_before(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Case-insensitive substring search over one workspace's activity
    /// (summary, method, status, error, bodies); `None` = newest rows.
    async fn activity_search(
        &self,
        workspace_id: Uuid,
        q: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ActivityRow>>;

    /// The same search over the workspace's own `agent_memories`.
    async fn memory_search_own(
        &self,
        workspace_id: Uuid,
        q: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MemoryHit>>;

    // ---- schedules (issue 5) ----------------------------------------------

    /// Insert a schedule; a name already used in the workspace is
    /// [`StoreError::Conflict`].
    async fn schedule_insert(&self, s: &NewSchedule) -> Result<()>;

    /// The workspace's schedules, oldest first.
    async fn schedule_list(&self, workspace_id: Uuid) -> Result<Vec<ScheduleRow>>;

    /// One schedule, scoped to its workspace.
    async fn schedule_get(&self, workspace_id: Uuid, id: Uuid) -> Result<Option<ScheduleRow>>;

    /// Apply a patch; false when no such schedule in that workspace. A
    /// colliding name is [`StoreError::Conflict`].
    async fn schedule_patch(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        patch: &SchedulePatch,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    async fn schedule_delete(&self, workspace_id: Uuid, id: Uuid) -> Result<bool>;

    /// Enabled schedules with `next_run_at <= now` whose workspace is not
    /// removed, oldest `next_run_at` first, at most `limit`.
    async fn schedule_list_due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<ScheduleRow>>;

    /// Claim one due run: move `next_run_at` from `seen` (the value the
    /// claimer read) to `next` and set `last_run_at = now`, only if the row
    /// still has `next_run_at = seen` and is enabled. True = this caller
    /// owns the run; a concurrent claimer sees false.
    async fn schedule_claim(
        &self,
        id: Uuid,
        seen: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Mark a run of `id` in flight (`run_started_at = now`) unless one
    /// already is; a marker older than `stale_before` counts as abandoned.
    /// True = this caller may fire.
    async fn schedule_begin_run(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool>;

    /// Record the outcome of a fired run (`run_count + 1`, last status and
    /// error) and clear its in-flight marker.
    async fn schedule_record_run(&self, id: Uuid, result: &ScheduleRunResult) -> Result<bool>;

    /// Record a skipped run (`run_count + 1`, last status and error); the
    /// in-flight marker of another run is left alone.
    async fn schedule_record_skip(&self, id: Uuid, result: &ScheduleRunResult) -> Result<bool>;

    /// Newest `cron_run` activity rows of one schedule.
    async fn activity_cron_history(
        &self,
        workspace_id: Uuid,
        schedule_id: Uuid,
        limit: i64,
    ) -> Result<Vec<ActivityRow>>;

    // ---- secrets (issue 5) ------------------------------------------------

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

    // ---- workspace config and key/value memory (issue 5) -------------------

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

    // ---- scoped memories (issue 5) ----------------------------------------

    async fn memory_insert(&self, m: &MemoryRow) -> Result<()>;

    /// Delete a memory owned by `workspace_id`.
    async fn memory_delete(&self, workspace_id: Uuid, id: Uuid) -> Result<bool>;

    async fn memory_search(&self, q: &MemoryQuery) -> Result<Vec<MemoryRow>>;

    // ---- approvals (issue 5) ----------------------------------------------

    async fn approval_insert(&self, a: &NewApproval) -> Result<()>;

    /// The workspace's newest approvals.
    async fn approval_list(&self, workspace_id: Uuid, limit: i64) -> Result<Vec<ApprovalRow>>;

    /// Decide a `pending` approval of that workspace; false otherwise.
    async fn approval_decide(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        status: &str,
        decided_by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Deny every pending approval created before `before` with
    /// `decided_by = 'auto-expired'`; returns the rows it expired.
    async fn approval_expire(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ApprovalRow>>;

    /// Pending approvals across workspaces, oldest first.
    async fn approval_list_pending(&self, limit: i64) -> Result<Vec<ApprovalRow>>;
}

/// `%<q lowercased, LIKE wildcards escaped with \>%`: a literal,
/// case-insensitive substring pattern (`ESCAPE '\'`).
pub(crate) fn like_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
