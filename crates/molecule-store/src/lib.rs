//! Persistence for Molecule: two native backends, embedded SQLite (WAL, the
//! default) and PostgreSQL. Both run the same logical schema
//! (data-and-lifecycle.md §1) through their own versioned migrations,
//! applied once, and both pass one conformance suite (`tests/conformance.rs`).
//!
//! One module per resource (`workspaces`, `tokens`, `events`, `activity`,
//! `schedules`, `secrets`, `config`, `memories`, `approvals`) holds its
//! trait, its row types and the SQL both dialects run as written; each
//! backend implements the trait in its own file of the same name, with
//! backend-local text only where the dialects differ. [`Store`] is the sum
//! of the resource traits, so `Arc<dyn Store>` reaches every method.
//!
//! The store knows rows, not HTTP views and not business rules: status
//! transitions are decided in the server's `app` layer and only *written*
//! here, with the guards the caller asks for.
mod activity;
mod agents;
mod approvals;
mod canvas;
mod channels;
mod config;
mod events;
mod memories;
mod postgres;
mod schedules;
mod secrets;
mod seeds;
mod sqlite;
mod tokens;
mod webhooks;
mod workspaces;

use async_trait::async_trait;
use std::sync::Arc;

pub use activity::*;
pub use agents::*;
pub use approvals::*;
pub use canvas::*;
pub use channels::*;
pub use config::*;
pub use events::*;
pub use memories::*;
pub use molecule_types::{
    ActivityType, ApprovalState, RunStatus, Runtime, Transition, WorkspaceStatus,
};
pub use postgres::PostgresStore;
pub use schedules::*;
pub use secrets::*;
pub use seeds::*;
pub use sqlite::SqliteStore;
pub use tokens::*;
pub use webhooks::*;
pub use workspaces::*;

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

/// Every persistent operation of the platform: the resource traits, plus
/// what belongs to the backend as a whole. Methods are named resource
/// first, verb second. All timestamps that matter for ordering are passed in
/// by the caller (`now`) so tests can reason about them.
#[async_trait]
pub trait Store:
    WorkspaceStore
    + TokenStore
    + EventStore
    + ActivityStore
    + ScheduleStore
    + SecretStore
    + ConfigStore
    + MemoryStore
    + ApprovalStore
    + AgentStore
    + CanvasStore
    + WebhookStore
    + ChannelStore
    + SeedStore
    + Send
    + Sync
    + 'static
{
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;

    /// Whether this process leads the singleton background task `task`
    /// among the platform processes on this database, taking the lead when
    /// nobody holds it. A leader keeps the lead until its process (its
    /// database session) ends. PostgreSQL: a session advisory lock per
    /// task; SQLite: always (one process).
    async fn lead(&self, task: &str) -> Result<bool>;

    /// Give up every lead now (an orderly shutdown), so another process
    /// takes over at its next attempt instead of when this one exits.
    async fn resign(&self);

    /// [`WorkspaceStore::workspace_transition`] written only while this
    /// process leads `task`, through the session that holds the lead (a
    /// fenced write): `None`, writing nothing, when it does not lead. A
    /// process that was stopped while leading and evicted meanwhile finds
    /// its session gone: whatever it was about to do as leader is not
    /// done. SQLite: one process, the plain transition.
    async fn workspace_transition_as_leader(
        &self,
        task: &str,
        id: uuid::Uuid,
        transition: molecule_types::Transition,
        reason: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<bool>>;

    /// Send `messages`, in order, to every platform process on this
    /// database, including this one's own subscription (the sender
    /// recognises its own). PostgreSQL: `NOTIFY`, short messages in one
    /// round trip (a message too long for a notification travels in a row,
    /// and the notification names the row); all or nothing, so a failed
    /// send may be repeated. SQLite: one process, nobody to tell.
    async fn bus_send(&self, messages: &[String]) -> Result<()>;

    /// Receive what [`Store::bus_send`] sends, in commit order, from now
    /// on; `None` when the backend has no other processes (SQLite).
    async fn bus_subscribe(&self) -> Result<Option<BusReceiver>>;
}

/// What a bus subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusMessage {
    Message(String),
    /// The connection was lost and is back: messages sent meanwhile are
    /// gone, so whatever they would have invalidated must be re-read.
    Gap,
}

/// A bus subscription; it ends when this is dropped.
pub type BusReceiver = tokio::sync::mpsc::Receiver<BusMessage>;

/// A vocabulary word read from a column; a word the platform does not know
/// is a corrupt row.
pub(crate) fn word<T>(s: &str) -> Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e: T::Err| StoreError::Corrupt(e.to_string()))
}

/// [`word`] for a nullable column, where `NULL` and `""` are both "none".
pub(crate) fn opt_word<T>(s: Option<&str>) -> Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.filter(|s| !s.is_empty()).map(word).transpose()
}

/// `%<q lowercased, LIKE wildcards escaped with \>%`: a literal,
/// case-insensitive substring pattern (`ESCAPE '\'`).
pub(crate) fn like_pattern(q: &str) -> String {
    like_literal(&q.to_lowercase())
}

/// `%<q, LIKE wildcards escaped with \>%`: `%`, `_` and `\` in user input
/// match themselves (`ESCAPE '\'`).
pub(crate) fn like_literal(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
