//! Heartbeat throughput: sustained `POST /registry/heartbeat` per second
//! through the real HTTP API at concurrency 64, next to a baseline measured
//! in the same run: the same number of single-row UPDATEs issued directly to
//! the same database at the same concurrency.
//!
//! Run: `cargo xtask bench heartbeat` (starts a throwaway PostgreSQL), or
//! `cargo bench -p molecule-server --bench heartbeat` for SQLite only /
//! with `MOLECULE_BENCH_DATABASE_URL=postgres://…` for PostgreSQL as well.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use molecule_client::Client;
use molecule_server::Server;
use molecule_server::config::{Config, Database};
use molecule_types::dto::{CreateWorkspace, Heartbeat, RegisterRequest};
use serde_json::json;
use sqlx::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

const CONCURRENCY: usize = 64;
const WORKSPACES: usize = 256;
const RUN_FOR: Duration = Duration::from_secs(8);

#[tokio::main]
async fn main() {
    let mut rows = Vec::new();
    let dir = std::env::temp_dir().join(format!("molecule-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    rows.push(run("sqlite", Database::Sqlite(dir.join("bench.db"))).await);
    if let Ok(url) = std::env::var("MOLECULE_BENCH_DATABASE_URL") {
        let name = format!("molecule_bench_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&url)
            .await
            .expect("connect to MOLECULE_BENCH_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create bench database");
        let base = url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&url)
            .to_string();
        rows.push(run("postgres", Database::Postgres(format!("{base}/{name}"))).await);
    } else {
        eprintln!(
            "(MOLECULE_BENCH_DATABASE_URL unset: PostgreSQL skipped; `cargo xtask bench heartbeat` provides one)"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    println!(
        "heartbeat benchmark: concurrency {CONCURRENCY}, {WORKSPACES} workspaces, {} s per measurement, {} cores",
        RUN_FOR.as_secs(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "{:<10} {:>16} {:>20} {:>8} {:>10}",
        "backend", "heartbeats/s", "direct UPDATEs/s", "ratio", "target"
    );
    for r in &rows {
        let verdict = if r.api >= 10_000.0 { "met" } else { "MISSED" };
        println!(
            "{:<10} {:>16.0} {:>20.0} {:>7.2}x {:>10}",
            r.backend,
            r.api,
            r.direct,
            r.api / r.direct,
            format!("≥10000 {verdict}")
        );
    }
}

struct Row {
    backend: &'static str,
    api: f64,
    direct: f64,
}

async fn run(backend: &'static str, db: Database) -> Row {
    let mut config = Config::for_tests(db.clone());
    config.rate_limit = u32::MAX;
    config.liveness_check_every = Duration::from_secs(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = Server::start(config, listener)
        .await
        .expect("server starts");
    let admin = Client::new(server.url());
    let mut agents = Vec::new();
    for i in 0..WORKSPACES {
        let id = admin
            .create_workspace(&CreateWorkspace {
                name: format!("w{i}"),
                ..Default::default()
            })
            .await
            .expect("create")
            .id;
        let reg = RegisterRequest {
            id: id.to_string(),
            url: format!("http://w{i}.bench:8000"),
            agent_card: json!({}),
        };
        let token = admin
            .register(&reg)
            .await
            .expect("register")
            .auth_token
            .expect("token");
        agents.push((id, admin.clone().with_token(Some(token))));
    }
    let ids: Vec<Uuid> = agents.iter().map(|(id, _)| *id).collect();
    let agents = Arc::new(agents);
    eprintln!("[{backend}] measuring heartbeats through the API…");
    let api = measure(move |n| {
        let agents = agents.clone();
        async move {
            let (id, c) = &agents[n % agents.len()];
            let hb = Heartbeat {
                workspace_id: id.to_string(),
                active_tasks: (n % 3) as i32,
                uptime_seconds: n as i32,
                ..Default::default()
            };
            c.heartbeat(&hb).await.is_ok()
        }
    })
    .await;
    server.shutdown().await.expect("shutdown");

    eprintln!("[{backend}] measuring direct single-row UPDATEs…");
    let ids: Arc<Vec<Uuid>> = Arc::new(ids);
    let direct = match &db {
        Database::Sqlite(path) => {
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(opts)
                .await
                .expect("sqlite pool");
            measure(move |n| {
                let (pool, ids) = (pool.clone(), ids.clone());
                async move {
                    sqlx::query("UPDATE workspaces SET uptime_seconds = ?1, last_heartbeat_at = ?2 WHERE id = ?3")
                        .bind(n as i64)
                        .bind(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
                        .bind(ids[n % ids.len()].to_string())
                        .execute(&pool)
                        .await
                        .is_ok()
                }
            })
            .await
        }
        Database::Postgres(url) => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await
                .expect("pg pool");
            measure(move |n| {
                let (pool, ids) = (pool.clone(), ids.clone());
                async move {
                    sqlx::query("UPDATE workspaces SET uptime_seconds = $1, last_heartbeat_at = now() WHERE id = $2")
                        .bind(n as i32)
                        .bind(ids[n % ids.len()])
                        .execute(&pool)
                        .await
                        .is_ok()
                }
            })
            .await
        }
    };
    Row {
        backend,
        api,
        direct,
    }
}

/// Run `op` from CONCURRENCY workers for RUN_FOR; returns successful ops/s.
async fn measure<F, Fut>(op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (op, done, failed, stop, counter) = (
                op.clone(),
                done.clone(),
                failed.clone(),
                stop.clone(),
                counter.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = counter.fetch_add(1, Ordering::Relaxed) as usize;
                    if op(n).await {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(RUN_FOR).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let f = failed.load(Ordering::Relaxed);
    if f > 0 {
        eprintln!("  {f} operations failed");
    }
    done.load(Ordering::Relaxed) as f64 / elapsed
}
