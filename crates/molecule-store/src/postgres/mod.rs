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
use sqlx::postgres::{PgPool, PgPoolOptions};
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
            .connect(url)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        tracing::debug!("postgres store connected");
        let leadership =
            std::sync::Arc::new(leader::Leadership::new((*pool.connect_options()).clone()));
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
