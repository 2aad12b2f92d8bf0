//! Leadership among replicas on one database: PostgreSQL session advisory
//! locks, one per task name, held on a connection of their own. The lock is
//! the session's: when the process that holds it dies, its connection closes
//! and PostgreSQL releases the lock, so another replica's next attempt wins.
//! Keys include the database's name: replicas of two platforms sharing one
//! PostgreSQL server never contend.
//!
//! A holder that is alive but stopped (`SIGSTOP`, a frozen VM) keeps its
//! session, and TCP keepalives cannot tell (its kernel answers them). A
//! living holder touches its session every [`TOUCH_EVERY`]; a replica
//! that wants a lock whose holder's session has been idle for
//! [`HOLDER_SILENT`] ends that session (`pg_terminate_backend`), and takes
//! the lock at its next attempt. When the stopped process resumes, its
//! session is gone: it stands by.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use chrono::{DateTime, Utc};
use molecule_types::Transition;
use uuid::Uuid;

use crate::{Result, StoreError};

/// How often a session holding locks is touched.
const TOUCH_EVERY: Duration = Duration::from_secs(5);
/// A lock holder's session idle this long belongs to a stopped process.
const HOLDER_SILENT: Duration = Duration::from_secs(30);
/// Longest a leadership check may take: a holder that cannot reach the
/// database within it (a silent network) stops leading.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Leadership {
    options: PgConnectOptions,
    state: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    conn: Option<PgConnection>,
    tasks: HashSet<String>,
    /// When each lock held elsewhere last had its holder checked (at most
    /// once per [`TOUCH_EVERY`]: the check reads `pg_locks`).
    checked: HashMap<String, Instant>,
}

impl Held {
    /// The session is gone or unusable: whatever it held is lost.
    fn lose(&mut self) {
        self.conn = None;
        self.tasks.clear();
    }
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership").finish_non_exhaustive()
    }
}

impl Leadership {
    /// The leadership of one store, and the task that touches its session
    /// (it ends with the store).
    pub(super) fn start(options: PgConnectOptions) -> Arc<Self> {
        let leadership = Arc::new(Self {
            options,
            state: Mutex::new(Held::default()),
        });
        tokio::spawn(touch(Arc::downgrade(&leadership)));
        leadership
    }

    /// Whether this process leads `task` now: it held the lock already (and
    /// its session is still alive), or it just took it.
    pub(super) async fn lead(&self, task: &str) -> Result<bool> {
        let mut held = self.state.lock().await;
        let result = bounded(
            "leadership check",
            Self::attempt(&self.options, &mut held, task),
        )
        .await;
        if result.is_err() {
            held.lose();
        }
        result
    }

    /// A status transition written through the session that holds
    /// `task`'s lock, only while this process holds it: `None` when it
    /// does not. A session ended meanwhile (this process was stopped and
    /// evicted) fails the write, and every lead is dropped.
    pub(super) async fn transition(
        &self,
        task: &str,
        id: Uuid,
        transition: Transition,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>> {
        let mut held = self.state.lock().await;
        if !held.tasks.contains(task) {
            return Ok(None);
        }
        let Some(conn) = held.conn.as_mut() else {
            return Ok(None);
        };
        let write = super::workspaces::transition_on(&mut *conn, id, transition, reason, now);
        let result = bounded("write as leader", write).await;
        if result.is_err() {
            held.lose();
        }
        result.map(Some)
    }

    /// Close the session that holds the locks: every lead is released.
    pub(super) async fn resign(&self) {
        let mut held = self.state.lock().await;
        held.tasks.clear();
        if let Some(conn) = held.conn.take() {
            let _ = conn.close().await;
        }
    }

    async fn attempt(options: &PgConnectOptions, held: &mut Held, task: &str) -> Result<bool> {
        if held.conn.is_none() {
            held.tasks.clear();
            held.conn = Some(options.connect().await?);
        }
        let Some(conn) = held.conn.as_mut() else {
            return Ok(false);
        };
        if held.tasks.contains(task) {
            // A held lock is only as good as the session holding it.
            conn.ping().await?;
            return Ok(true);
        }
        let got: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtextextended(current_database() || ':' || $1, 0))",
        )
        .bind(task)
        .fetch_one(&mut *conn)
        .await?;
        if got {
            held.tasks.insert(task.to_string());
            held.checked.remove(task);
        } else if held
            .checked
            .get(task)
            .is_none_or(|at| at.elapsed() >= TOUCH_EVERY)
        {
            held.checked.insert(task.to_string(), Instant::now());
            if let Err(e) = evict_silent_holder(conn, task).await {
                // E.g. a holder connected as another role, which this one
                // may not signal: it keeps the lock, this replica stands by.
                tracing::warn!(task, error = %e, "could not check or end a silent lock holder");
            }
        }
        Ok(got)
    }
}

/// `work` on the leadership session, at most [`CHECK_TIMEOUT`] long: a
/// session that cannot answer in time counts as lost.
async fn bounded<T>(what: &str, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(CHECK_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Db(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{what} timed out"),
            ))))
        })
}

/// End the session holding `task`'s lock if it has been idle for
/// [`HOLDER_SILENT`] (a living holder touches it every [`TOUCH_EVERY`]).
/// The lock is free once that backend has exited: the next attempt takes
/// it.
async fn evict_silent_holder(conn: &mut PgConnection, task: &str) -> Result<()> {
    let evicted: Vec<i32> = sqlx::query_scalar(
        // The silent holders are found first (a materialised CTE): a
        // condition next to pg_terminate_backend in one WHERE may be
        // evaluated after it.
        "WITH k AS (SELECT hashtextextended(current_database() || ':' || $1, 0) AS key),
         silent AS MATERIALIZED (
           SELECT a.pid FROM k, pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.classid = ((k.key >> 32) & 4294967295)::oid
             AND l.objid = (k.key & 4294967295)::oid
             AND a.pid <> pg_backend_pid()
             AND a.state = 'idle'
             AND a.state_change < now() - make_interval(secs => $2))
         SELECT pid FROM silent WHERE pg_terminate_backend(pid)",
    )
    .bind(task)
    .bind(HOLDER_SILENT.as_secs_f64())
    .fetch_all(&mut *conn)
    .await?;
    for pid in evicted {
        tracing::warn!(
            task,
            backend = pid,
            silent_s = HOLDER_SILENT.as_secs(),
            "the holder of a lead stopped touching its session; ended it to take over"
        );
    }
    Ok(())
}

/// Touch the session while it holds locks, so a living holder is never
/// taken for a stopped one. Ends with the store.
async fn touch(leadership: Weak<Leadership>) {
    loop {
        tokio::time::sleep(TOUCH_EVERY).await;
        let Some(leadership) = leadership.upgrade() else {
            return;
        };
        let mut held = leadership.state.lock().await;
        if held.tasks.is_empty() {
            continue;
        }
        let Some(conn) = held.conn.as_mut() else {
            continue;
        };
        let touch = async { Ok(sqlx::query("SELECT 1").execute(conn).await?) };
        if bounded("leadership touch", touch).await.is_err() {
            held.lose();
        }
    }
}
