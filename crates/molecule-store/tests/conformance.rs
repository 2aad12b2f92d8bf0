//! The store conformance suite: every case runs against every backend.
//!
//! SQLite always runs (a fresh file in a temp directory per case).
//! PostgreSQL runs when `MOLECULE_TEST_DATABASE_URL` points at a server the
//! tests may create databases on; each case gets its own
//! `molecule_t_<uuid>` database, dropped when the case finishes. With
//! `CI=true` a missing URL is a failure, not a skip.
//!
//! Cases live in `conformance/*.rs`; this file holds the harness.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "conformance/activity.rs"]
mod activity;
#[path = "conformance/leadership.rs"]
mod leadership;
#[path = "conformance/registry.rs"]
mod registry;
#[path = "conformance/resources.rs"]
mod resources;
#[path = "conformance/schedules.rs"]
mod schedules;
#[path = "conformance/schema.rs"]
mod schema;
#[path = "conformance/tokens_events.rs"]
mod tokens_events;
#[path = "conformance/workspaces.rs"]
mod workspaces;

use chrono::{DateTime, TimeZone, Utc};
use molecule_store::{NewWorkspace, Runtime, Store, WorkspaceStatus};
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

pub const DATABASE_URL_ENV: &str = "MOLECULE_TEST_DATABASE_URL";

/// One backend under test: its store, the URL it was opened from (so a case
/// can open it again), and what to clean up afterwards.
pub struct Backend {
    pub name: &'static str,
    pub url: String,
    pub store: Arc<dyn Store>,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite { dir: PathBuf },
    Postgres { admin_url: String, database: String },
}

/// Direct SQL access to a backend's database, for what the trait does not
/// expose (schema details, migration bookkeeping, corrupt rows).
pub enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Raw {
    pub async fn execute(&self, sql: &'static str) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Raw::Sqlite(pool) => sqlx::query(sql).execute(pool).await?.rows_affected(),
            Raw::Postgres(pool) => sqlx::query(sql).execute(pool).await?.rows_affected(),
        })
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Backend {
    pub async fn raw(&self) -> Raw {
        match &self.cleanup {
            Cleanup::Sqlite { dir } => {
                let options = SqliteConnectOptions::new()
                    .filename(dir.join("molecule.db"))
                    .foreign_keys(true);
                Raw::Sqlite(
                    SqlitePool::connect_with(options)
                        .await
                        .expect("open sqlite"),
                )
            }
            Cleanup::Postgres { .. } => {
                Raw::Postgres(PgPool::connect(&self.url).await.expect("connect postgres"))
            }
        }
    }

    /// Close the store and delete its database. Skipped when a case panics:
    /// the temp file or `molecule_t_*` database is then left for inspection.
    pub async fn finish(self) {
        drop(self.store);
        match self.cleanup {
            Cleanup::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres {
                admin_url,
                database,
            } => {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .expect("admin connect");
                let sql = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await
                    .expect("drop test database");
            }
        }
    }
}

/// A fresh store on every configured backend.
pub async fn stores() -> Vec<Backend> {
    let postgres_url = std::env::var(DATABASE_URL_ENV)
        .ok()
        .filter(|url| !url.is_empty());
    // `cargo xtask test` runs a SQLite pass (MOLECULE_TEST_PASS=sqlite) and a
    // PostgreSQL pass, and fails itself when PostgreSQL cannot start. Any
    // other CI invocation without a PostgreSQL URL is a configuration error.
    let sqlite_pass = std::env::var("MOLECULE_TEST_PASS").as_deref() == Ok("sqlite");
    if postgres_url.is_none() && !sqlite_pass && std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "CI=true but {DATABASE_URL_ENV} is unset: the PostgreSQL backend must be tested in \
             CI (run `cargo xtask test`, or set {DATABASE_URL_ENV}=postgres://…)"
        );
    }
    let mut backends = Vec::new();

    let dir = std::env::temp_dir().join(format!("molecule-store-{}", Uuid::new_v4().simple()));
    // A path whose parent does not exist yet: `open` must create it.
    let url = format!("sqlite:{}", dir.join("molecule.db").display());
    let store = molecule_store::open(&url).await.expect("open sqlite store");
    backends.push(Backend {
        name: "sqlite",
        url,
        store,
        cleanup: Cleanup::Sqlite { dir },
    });

    match postgres_url {
        Some(admin_url) => {
            let database = format!("molecule_t_{}", Uuid::new_v4().simple());
            let mut admin = PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("{DATABASE_URL_ENV}={admin_url}: {e}"));
            // The name is generated above from a uuid: no user input.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
                .execute(&mut admin)
                .await
                .expect("create test database");
            let url = with_database(&admin_url, &database);
            let store = molecule_store::open(&url)
                .await
                .expect("open postgres store");
            backends.push(Backend {
                name: "postgres",
                url,
                store,
                cleanup: Cleanup::Postgres {
                    admin_url,
                    database,
                },
            });
        }
        None => eprintln!("{DATABASE_URL_ENV} unset: PostgreSQL cases skipped"),
    }
    backends
}

/// `url` with its database path replaced by `database`, query kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A fixed instant plus `secs` seconds, with a microsecond part so that
/// sub-second precision is exercised (both backends store microseconds).
pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
        + chrono::Duration::seconds(secs)
        + chrono::Duration::microseconds(123_456)
}

/// A minimal valid new workspace.
pub fn new_ws(name: &str, parent_id: Option<Uuid>, now: DateTime<Utc>) -> NewWorkspace {
    NewWorkspace {
        id: Uuid::new_v4(),
        name: name.to_string(),
        role: None,
        tier: 1,
        status: WorkspaceStatus::Provisioning,
        url: None,
        parent_id,
        awareness_namespace: None,
        runtime: Runtime::parse("langgraph"),
        workspace_dir: None,
        workspace_access: "none".to_string(),
        source_bundle_id: None,
        x: 0.0,
        y: 0.0,
        now,
    }
}

/// Insert `ws` and return its id.
pub async fn insert(store: &dyn Store, ws: NewWorkspace) -> Uuid {
    store.workspace_insert(&ws).await.expect("workspace_insert");
    ws.id
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(
        with_database("postgres://u@h:5/postgres?sslmode=disable", "x"),
        "postgres://u@h:5/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h:5", "x"), "postgres://h:5/x");
}
