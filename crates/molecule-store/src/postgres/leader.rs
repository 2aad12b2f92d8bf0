//! Leadership among replicas on one database: PostgreSQL session advisory
//! locks, one per task name, held on a connection of their own. The lock is
//! the session's: when the process that holds it dies, its connection closes
//! and PostgreSQL releases the lock, so another replica's next attempt wins.
//! Keys include the database's name: replicas of two platforms sharing one
//! PostgreSQL server never contend.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use std::collections::HashSet;
use tokio::sync::Mutex;

use crate::Result;

pub(super) struct Leadership {
    options: PgConnectOptions,
    state: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    conn: Option<PgConnection>,
    tasks: HashSet<String>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership").finish_non_exhaustive()
    }
}

impl Leadership {
    pub(super) fn new(options: PgConnectOptions) -> Self {
        Self {
            options,
            state: Mutex::new(Held::default()),
        }
    }

    /// Whether this process leads `task` now: it held the lock already (and
    /// its session is still alive), or it just took it.
    pub(super) async fn lead(&self, task: &str) -> Result<bool> {
        let mut held = self.state.lock().await;
        let result = Self::attempt(&self.options, &mut held, task).await;
        if result.is_err() {
            // The session is gone or unusable: whatever it held is lost.
            held.conn = None;
            held.tasks.clear();
        }
        result
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
        }
        Ok(got)
    }
}
