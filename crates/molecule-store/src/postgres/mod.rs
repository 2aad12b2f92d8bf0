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
use std::time::Duration;

const MAX_CONNECTIONS: u32 = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// A pooled connection idle for longer than this is pinged before use (a
/// database restart or a dropped connection is found there, not by a
/// query); one in steady use is not — sqlx's default pings on every
/// acquire, a second round trip for every query.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(5);

/// [`Store`] over a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    leadership: std::sync::Arc<leader::Leadership>,
}

impl PostgresStore {
    /// Connect to `url` and apply pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_IF_IDLE_FOR {
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
        Ok(Self { pool, leadership })
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
        bus::subscribe(&self.pool).await.map(Some)
    }
}
