//! The PostgreSQL backend, with native `uuid`, `timestamptz`, `jsonb` and
//! `bytea` columns.
//!
//! This module owns the pool setup; each resource submodule implements its
//! trait (`WorkspaceStore` in `workspaces.rs`, …) directly. Migrations run once per database version
//! (tracked in `_sqlx_migrations`, serialised by sqlx's advisory lock).

mod activity;
mod agents;
mod approvals;
mod bus;
mod canvas;
mod channels;
mod codec;
mod config;
mod events;
mod leader;
mod memories;
mod schedules;
mod secrets;
mod seeds;
mod tokens;
mod webhooks;
mod workspaces;

use crate::{Result, Store};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MAX_CONNECTIONS: u32 = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// A pooled connection idle for longer than this is pinged before use (a
/// database restart or a dropped connection is found there, not by a
/// query); one in steady use is not — sqlx's default pings on every
/// acquire, a second round trip for every query. Connections released
/// before the bus listener last lost its own are pinged too
/// ([`Suspicion`]).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(5);

/// Set by the server on its side of every session: TCP keepalives and a
/// user timeout. A replica whose host vanished (no FIN, no RST) loses its
/// sessions within seconds instead of the kernel's two hours: its advisory
/// locks go (another replica takes its singleton tasks over) and its LISTEN
/// no longer holds the notification queue back. (Set for TCP connections
/// only; PostgreSQL ignores them on a unix socket.)
const SESSION_OPTIONS: [(&str, &str); 4] = [
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
    ("tcp_user_timeout", "10000"),
];

/// [`Store`] over a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    leadership: std::sync::Arc<leader::Leadership>,
    suspicion: Arc<Suspicion>,
}

/// When the pool's connections last looked dead: the bus listener, always
/// reading, is the first to see a database restart or a network cut. A
/// connection released to the pool before then is pinged before it is
/// used again, so the requests after a restart find live connections
/// instead of failing once per dead one.
#[derive(Debug)]
pub(super) struct Suspicion {
    base: Instant,
    /// Milliseconds after `base`, plus one; 0 while nothing looked dead.
    at: AtomicU64,
}

impl Suspicion {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            at: AtomicU64::new(0),
        }
    }

    /// Every connection released until now may be dead.
    pub(super) fn raise(&self) {
        let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.at.store(now + 1, Ordering::SeqCst);
    }

    /// Whether a connection idle for `idle_for` was released before the
    /// last [`Suspicion::raise`].
    fn covers(&self, idle_for: Duration) -> bool {
        match self.at.load(Ordering::SeqCst) {
            0 => false,
            at => self.base.elapsed().saturating_sub(idle_for) <= Duration::from_millis(at),
        }
    }
}

impl PostgresStore {
    /// Connect to `url` and apply pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let suspicion = Arc::new(Suspicion::new());
        let suspect = suspicion.clone();
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                let ping = meta.idle_for > PING_IF_IDLE_FOR || suspect.covers(meta.idle_for);
                Box::pin(async move {
                    if ping {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(url.parse::<PgConnectOptions>()?.options(SESSION_OPTIONS))
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        tracing::debug!("postgres store connected");
        let leadership = leader::Leadership::start((*pool.connect_options()).clone());
        Ok(Self {
            pool,
            leadership,
            suspicion,
        })
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn lead(&self, task: &str) -> Result<bool> {
        self.leadership.lead(task).await
    }

    async fn resign(&self) {
        self.leadership.resign().await;
    }

    async fn workspace_transition_as_leader(
        &self,
        task: &str,
        id: uuid::Uuid,
        transition: molecule_types::Transition,
        reason: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<bool>> {
        self.leadership
            .transition(task, id, transition, reason, now)
            .await
    }

    async fn bus_send(&self, messages: &[String]) -> Result<()> {
        bus::send(&self.pool, messages).await
    }

    async fn bus_subscribe(&self) -> Result<Option<crate::BusReceiver>> {
        bus::subscribe(&self.pool, self.suspicion.clone())
            .await
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every session (the pool's, and the leadership session made from the
    /// same options) carries the keepalive settings. PostgreSQL pass only.
    #[tokio::test]
    async fn sessions_carry_keepalives_so_a_vanished_host_lets_go() {
        let Some(url) = std::env::var("MOLECULE_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            return;
        };
        use sqlx::Connection;
        let name = format!("molecule_t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&url).await.expect("admin");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create");
        let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
        let store = PostgresStore::connect(&format!("{base}/{name}"))
            .await
            .expect("connect");
        for (setting, value) in SESSION_OPTIONS {
            let set: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {setting}")))
                .fetch_one(&store.pool)
                .await
                .expect("show");
            assert!(
                set == value || set == format!("{value}s"),
                "{setting} = {set}, wanted {value}"
            );
        }
        store.pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .expect("drop");
    }

    #[test]
    fn suspicion_covers_connections_released_before_it() {
        let s = Suspicion::new();
        assert!(!s.covers(Duration::ZERO), "nothing looked dead yet");
        std::thread::sleep(Duration::from_millis(20));
        s.raise();
        // Released 10 ms ago: before the raise. Released just now: after.
        assert!(s.covers(Duration::from_millis(10)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!s.covers(Duration::ZERO));
        assert!(s.covers(Duration::from_secs(1)));
    }
}
