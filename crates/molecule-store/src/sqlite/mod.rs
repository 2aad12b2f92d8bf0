//! The embedded SQLite backend (the default).
//!
//! One file in WAL mode, two pools over it: a single-connection *writer* pool
//! through which every write goes (transactions start with `BEGIN IMMEDIATE`,
//! so writers queue in the pool instead of failing to upgrade a read lock),
//! and a *reader* pool whose connections read concurrently with the writer.
//! This module owns the connection setup; each resource submodule implements
//! its trait (`WorkspaceStore` in `workspaces.rs`, …) directly.

mod activity;
mod agents;
mod approvals;
mod canvas;
mod channels;
mod codec;
mod config;
mod events;
mod memories;
mod schedules;
mod secrets;
mod seeds;
mod tokens;
mod webhooks;
mod workspaces;

use crate::{Result, Store, StoreError};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;

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

    /// An embedded database has one platform process: it leads everything.
    async fn lead(&self, _task: &str) -> Result<bool> {
        Ok(true)
    }

    async fn resign(&self) {}

    async fn workspace_transition_as_leader(
        &self,
        _task: &str,
        id: uuid::Uuid,
        transition: molecule_types::Transition,
        reason: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<bool>> {
        crate::WorkspaceStore::workspace_transition(self, id, transition, reason, now)
            .await
            .map(Some)
    }

    async fn bus_send(&self, _messages: &[String]) -> Result<()> {
        Ok(())
    }

    async fn bus_subscribe(&self) -> Result<Option<crate::BusReceiver>> {
        Ok(None)
    }
}
