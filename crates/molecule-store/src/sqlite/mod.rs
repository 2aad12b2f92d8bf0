//! The embedded SQLite backend (the default).
//!
//! One file in WAL mode, two pools over it: a single-connection *writer* pool
//! through which every write goes (transactions start with `BEGIN IMMEDIATE`,
//! so writers queue in the pool instead of failing to upgrade a read lock),
//! and a *reader* pool whose connections read concurrently with the writer.
//! This module owns the connection setup and the [`Store`] dispatch; the SQL
//! lives in the resource submodules.

mod activity;
mod approvals;
mod codec;
mod config;
mod events;
mod memories;
mod schedules;
mod secrets;
mod tokens;
mod workspaces;

use crate::{
    ActivityQuery, ActivityRow, ApprovalRow, DelegationUpdate, EventRow, HeartbeatWrite,
    MemoryEntryRow, MemoryHit, MemoryQuery, MemoryRow, NewActivity, NewApproval, NewEvent,
    NewSchedule, NewWorkspace, RegisterOutcome, Result, SchedulePatch, ScheduleRow,
    ScheduleRunResult, SecretRow, Store, StoreError, WorkspacePatch, WorkspaceRow, WorkspaceStatus,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::Transition;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

/// Reader connections; reads never wait for the writer under WAL.
const READERS: u32 = 8;
/// How long a connection waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Page size of a new database file (SQLite's default is 4 KiB; a file
/// created by an earlier version keeps its own). Nearly all writes are
/// activity rows of a kilobyte or more appended in batches: 16 KiB pages
/// write the same bytes in a quarter of the WAL frames, `pwrite` calls and
/// checkpoint copies (in an A/B of the writer alone its CPU per row fell
/// by about a quarter; docs/benchmarks.md).
const PAGE_SIZE: u32 = 16 * 1024;

/// The statement that opens every write transaction: take the write lock up
/// front, so a transaction that reads before it writes cannot hit
/// `SQLITE_BUSY` on lock upgrade when another process shares the file.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// [`Store`] over one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Open (creating the file and its parent directory when missing) and
    /// apply pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .page_size(PAGE_SIZE)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // The statement journal of each multi-row activity INSERT stays
            // in memory: on disk it was a temp file created, written and
            // unlinked for every batch.
            .pragma("temp_store", "memory")
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options)
            .await?;
        tracing::debug!(path = %path.display(), "sqlite store open");
        Ok(Self { writer, reader })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn workspace_insert(&self, ws: &NewWorkspace) -> Result<()> {
        workspaces::insert(self, ws).await
    }

    async fn workspace_get(&self, id: Uuid) -> Result<Option<WorkspaceRow>> {
        workspaces::get(self, id).await
    }

    async fn workspace_list(&self) -> Result<Vec<WorkspaceRow>> {
        workspaces::list(self).await
    }

    async fn workspace_list_children(&self, parent: Option<Uuid>) -> Result<Vec<WorkspaceRow>> {
        workspaces::list_children(self, parent).await
    }

    async fn workspace_hierarchy(&self) -> Result<Vec<(Uuid, Option<Uuid>)>> {
        workspaces::hierarchy(self).await
    }

    async fn workspace_parent(&self, id: Uuid) -> Result<Option<Option<Uuid>>> {
        workspaces::parent(self, id).await
    }

    async fn workspace_patch(
        &self,
        id: Uuid,
        patch: &WorkspacePatch,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        workspaces::patch(self, id, patch, now).await
    }

    async fn workspace_descendants(&self, id: Uuid) -> Result<Vec<(Uuid, String)>> {
        workspaces::descendants(self, id).await
    }

    async fn workspace_remove_many(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<()> {
        workspaces::remove_many(self, ids, now).await
    }

    async fn workspace_transition(
        &self,
        id: Uuid,
        transition: Transition,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        workspaces::transition(self, id, transition, reason, now).await
    }

    async fn workspace_register(
        &self,
        id: Uuid,
        url: &str,
        agent_card: &Value,
        now: DateTime<Utc>,
    ) -> Result<RegisterOutcome> {
        workspaces::register(self, id, url, agent_card, now).await
    }

    async fn workspace_heartbeat_many(&self, beats: &[HeartbeatWrite]) -> Result<()> {
        workspaces::heartbeat_many(self, beats).await
    }

    async fn workspace_set_url(&self, id: Uuid, url: &str, now: DateTime<Utc>) -> Result<bool> {
        workspaces::set_url(self, id, url, now).await
    }

    async fn workspace_update_card(
        &self,
        id: Uuid,
        agent_card: &Value,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        workspaces::update_card(self, id, agent_card, now).await
    }

    async fn workspace_list_stale_external(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<WorkspaceRow>> {
        workspaces::list_stale_external(self, before).await
    }

    async fn workspace_list_by_status(
        &self,
        statuses: &[WorkspaceStatus],
    ) -> Result<Vec<WorkspaceRow>> {
        workspaces::list_by_status(self, statuses).await
    }

    async fn token_insert(
        &self,
        workspace_id: Uuid,
        token_hash: &[u8],
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        tokens::insert(self, workspace_id, token_hash, prefix, now).await
    }

    async fn token_lookup(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Option<Uuid>> {
        tokens::lookup(self, token_hash, now).await
    }

    async fn token_replace(
        &self,
        workspace_id: Uuid,
        token_hash: &[u8],
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        tokens::replace(self, workspace_id, token_hash, prefix, now).await
    }

    async fn token_has_live(&self, workspace_id: Uuid) -> Result<bool> {
        tokens::has_live(self, workspace_id).await
    }

    async fn token_count_live(&self) -> Result<i64> {
        tokens::count_live(self).await
    }

    async fn event_insert(&self, event: &NewEvent) -> Result<()> {
        events::insert(self, event).await
    }

    async fn event_list(&self, workspace_id: Option<Uuid>, limit: i64) -> Result<Vec<EventRow>> {
        events::list(self, workspace_id, limit).await
    }

    async fn activity_insert_many(&self, rows: &[NewActivity]) -> Result<u64> {
        activity::insert_many(self, rows).await
    }

    async fn activity_insert(&self, row: &NewActivity) -> Result<bool> {
        activity::insert(self, row).await
    }

    async fn activity_by_idempotency_key(
        &self,
        workspace_id: Uuid,
        key: &str,
    ) -> Result<Option<ActivityRow>> {
        activity::by_idempotency_key(self, workspace_id, key).await
    }

    async fn activity_delete(&self, id: Uuid) -> Result<bool> {
        activity::delete(self, id).await
    }

    async fn activity_list(&self, q: &ActivityQuery) -> Result<Vec<ActivityRow>> {
        activity::list(self, q).await
    }

    async fn activity_delegation(
        &self,
        workspace_id: Uuid,
        delegation_id: &str,
    ) -> Result<Option<ActivityRow>> {
        activity::delegation(self, workspace_id, delegation_id).await
    }

    async fn activity_open_delegations(&self, limit: i64) -> Result<Vec<ActivityRow>> {
        activity::open_delegations(self, limit).await
    }

    async fn activity_delegation_update(&self, u: &DelegationUpdate<'_>) -> Result<u64> {
        activity::delegation_update(self, u).await
    }

    async fn activity_purge_before(&self, before: DateTime<Utc>) -> Result<u64> {
        activity::purge_before(self, before).await
    }

    async fn activity_search(
        &self,
        workspace_id: Uuid,
        q: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ActivityRow>> {
        activity::search(self, workspace_id, q, limit).await
    }

    async fn memory_search_own(
        &self,
        workspace_id: Uuid,
        q: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MemoryHit>> {
        activity::memory_search_own(self, workspace_id, q, limit).await
    }

    async fn schedule_insert(&self, s: &NewSchedule) -> Result<()> {
        schedules::insert(self, s).await
    }

    async fn schedule_list(&self, workspace_id: Uuid) -> Result<Vec<ScheduleRow>> {
        schedules::list(self, workspace_id).await
    }

    async fn schedule_get(&self, workspace_id: Uuid, id: Uuid) -> Result<Option<ScheduleRow>> {
        schedules::get(self, workspace_id, id).await
    }

    async fn schedule_patch(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        patch: &SchedulePatch,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        schedules::patch(self, workspace_id, id, patch, now).await
    }

    async fn schedule_delete(&self, workspace_id: Uuid, id: Uuid) -> Result<bool> {
        schedules::delete(self, workspace_id, id).await
    }

    async fn schedule_list_due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<ScheduleRow>> {
        schedules::list_due(self, now, limit).await
    }

    async fn schedule_claim(
        &self,
        id: Uuid,
        seen: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        schedules::claim(self, id, seen, next, now).await
    }

    async fn schedule_begin_run(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool> {
        schedules::begin_run(self, id, now, stale_before).await
    }

    async fn schedule_record_skip(&self, id: Uuid, result: &ScheduleRunResult) -> Result<bool> {
        schedules::record_skip(self, id, result).await
    }

    async fn schedule_record_run(&self, id: Uuid, result: &ScheduleRunResult) -> Result<bool> {
        schedules::record_run(self, id, result).await
    }

    async fn activity_cron_history(
        &self,
        workspace_id: Uuid,
        schedule_id: Uuid,
        limit: i64,
    ) -> Result<Vec<ActivityRow>> {
        schedules::cron_history(self, workspace_id, schedule_id, limit).await
    }

    async fn secret_set_workspace(
        &self,
        workspace_id: Uuid,
        key: &str,
        value: &[u8],
        encryption_version: i32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        secrets::set_workspace(self, workspace_id, key, value, encryption_version, now).await
    }

    async fn secret_list_workspace(&self, workspace_id: Uuid) -> Result<Vec<SecretRow>> {
        secrets::list_workspace(self, workspace_id).await
    }

    async fn secret_delete_workspace(&self, workspace_id: Uuid, key: &str) -> Result<bool> {
        secrets::delete_workspace(self, workspace_id, key).await
    }

    async fn secret_set_global(
        &self,
        key: &str,
        value: &[u8],
        encryption_version: i32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        secrets::set_global(self, key, value, encryption_version, now).await
    }

    async fn secret_list_global(&self) -> Result<Vec<SecretRow>> {
        secrets::list_global(self).await
    }

    async fn secret_delete_global(&self, key: &str) -> Result<bool> {
        secrets::delete_global(self, key).await
    }

    async fn secret_workspaces_with_key(&self, key: &str) -> Result<Vec<Uuid>> {
        secrets::workspaces_with_key(self, key).await
    }

    async fn config_get(&self, workspace_id: Uuid) -> Result<Option<Value>> {
        config::get(self, workspace_id).await
    }

    async fn config_merge(
        &self,
        workspace_id: Uuid,
        patch: &serde_json::Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        config::merge(self, workspace_id, patch, now).await
    }

    async fn memory_kv_set(
        &self,
        workspace_id: Uuid,
        key: &str,
        value: &Value,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        config::kv_set(self, workspace_id, key, value, expires_at, now).await
    }

    async fn memory_kv_get(
        &self,
        workspace_id: Uuid,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<MemoryEntryRow>> {
        config::kv_get(self, workspace_id, key, now).await
    }

    async fn memory_kv_list(
        &self,
        workspace_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<MemoryEntryRow>> {
        config::kv_list(self, workspace_id, now).await
    }

    async fn memory_kv_delete(&self, workspace_id: Uuid, key: &str) -> Result<bool> {
        config::kv_delete(self, workspace_id, key).await
    }

    async fn memory_insert(&self, m: &MemoryRow) -> Result<()> {
        memories::insert(self, m).await
    }

    async fn memory_delete(&self, workspace_id: Uuid, id: Uuid) -> Result<bool> {
        memories::delete(self, workspace_id, id).await
    }

    async fn memory_search(&self, q: &MemoryQuery) -> Result<Vec<MemoryRow>> {
        memories::search(self, q).await
    }

    async fn approval_insert(&self, a: &NewApproval) -> Result<()> {
        approvals::insert(self, a).await
    }

    async fn approval_list(&self, workspace_id: Uuid, limit: i64) -> Result<Vec<ApprovalRow>> {
        approvals::list(self, workspace_id, limit).await
    }

    async fn approval_decide(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        status: &str,
        decided_by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        approvals::decide(self, workspace_id, id, status, decided_by, now).await
    }

    async fn approval_expire(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ApprovalRow>> {
        approvals::expire(self, before, now).await
    }

    async fn approval_list_pending(&self, limit: i64) -> Result<Vec<ApprovalRow>> {
        approvals::list_pending(self, limit).await
    }
}
