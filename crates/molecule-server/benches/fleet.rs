//! Fleet size: 10 000 registered workspaces whose (simulated) agents each
//! heartbeat every 30 s, against a real `molecule serve` process: its CPU
//! and memory (from /proc), the duration of its sweeps (from
//! `/admin/liveness`), and `GET /workspaces` next to `GET /health` measured
//! in the same run (the baseline: the same HTTP path with no rows).
//!
//! Run: `cargo xtask bench fleet` (SQLite and a throwaway PostgreSQL), or
//! `cargo bench -p molecule-server --bench fleet` for SQLite only.
#![allow(clippy::unwrap_used)] // bench code: a failed unwrap is a failed run

#[path = "common/proc.rs"]
mod proc_stat;

#[path = "common/serve.rs"]
mod common;

use molecule_client::{Client, Method};
use molecule_types::dto::{CreateWorkspace, Heartbeat, RegisterRequest};
use serde_json::json;
use sqlx::Connection;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const FLEET: usize = 10_000;
const BEAT_EVERY: Duration = Duration::from_secs(30);
const REGISTER_CONCURRENCY: usize = 32;

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("molecule-fleet-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rows = vec![run("sqlite", &dir, None).await];
    match std::env::var("MOLECULE_BENCH_DATABASE_URL") {
        Ok(url) => {
            let name = format!("molecule_bench_{}", Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
            let pg = format!("{base}/{name}");
            rows.push(run("postgres", &dir.join("pg"), Some(&pg)).await);
        }
        Err(_) => eprintln!(
            "(MOLECULE_BENCH_DATABASE_URL unset: PostgreSQL skipped; `cargo xtask bench fleet` provides one)"
        ),
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    println!(
        "fleet benchmark: {FLEET} workspaces heartbeating every {} s (simulated agents), one `molecule serve`, {} cores",
        BEAT_EVERY.as_secs(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "{:<9} {:>9} {:>7} {:>9} {:>10} {:>11} {:>11} {:>12} {:>10} {:>7}",
        "backend",
        "register/s",
        "CPU %",
        "RSS MiB",
        "KiB/ws",
        "liveness ms",
        "hb-flush ms",
        "list p50 ms",
        "health ms",
        "ratio"
    );
    for r in &rows {
        println!(
            "{:<9} {:>9.0} {:>7.1} {:>9.1} {:>10.2} {:>11.2} {:>11.2} {:>12.1} {:>10.3} {:>6.0}x",
            r.backend,
            r.registered_per_second,
            r.cpu_percent,
            r.rss_after as f64 / 1024.0 / 1024.0,
            r.bytes_per_workspace / 1024.0,
            r.liveness_ms,
            r.flush_ms,
            r.list_ms,
            r.health_ms,
            r.list_ms / r.health_ms
        );
    }
}

struct Outcome {
    backend: &'static str,
    registered_per_second: f64,
    cpu_percent: f64,
    rss_after: u64,
    bytes_per_workspace: f64,
    liveness_ms: f64,
    flush_ms: f64,
    list_ms: f64,
    health_ms: f64,
}

/// The child's resident memory (bytes) and CPU time (clock ticks).
fn usage(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    (rss_kib * 1024, proc_stat::cpu_ticks(pid).unwrap())
}

/// Median of `n` timed calls of `path`, in ms.
async fn median(c: &Client, path: &str, n: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let r = c.request(Method::GET, path, None).await.unwrap();
        assert_eq!(r.status, 200, "{path}");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

async fn run(backend: &'static str, dir: &std::path::Path, pg: Option<&str>) -> Outcome {
    let common::Serve { mut child, url } = common::serve(dir, pg, &[]).await;
    let pid = child.id().unwrap();
    let admin = Client::new(url);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_before, _) = usage(pid);

    eprintln!("[{backend}] registering {FLEET} workspaces…");
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..REGISTER_CONCURRENCY {
        let (admin, next) = (admin.clone(), next.clone());
        workers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= FLEET {
                    return mine;
                }
                let id = admin
                    .create_workspace(&CreateWorkspace {
                        name: format!("agent-{i}"),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .id;
                let reg = RegisterRequest {
                    id: id.to_string(),
                    url: format!("http://agent-{i}.fleet:8000"),
                    agent_card: json!({"name": format!("agent {i}")}),
                };
                let token = admin.register(&reg).await.unwrap().auth_token.unwrap();
                mine.push((id, token));
            }
        });
    }
    let mut fleet = Vec::with_capacity(FLEET);
    while let Some(part) = workers.join_next().await {
        fleet.extend(part.unwrap());
    }
    let registered_per_second = FLEET as f64 / started.elapsed().as_secs_f64();

    eprintln!(
        "[{backend}] one heartbeat round: {FLEET} beats over {} s…",
        BEAT_EVERY.as_secs()
    );
    let (_, ticks_before) = usage(pid);
    let began = Instant::now();
    let every = BEAT_EVERY / FLEET as u32;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut beats = tokio::task::JoinSet::new();
    for (n, (id, token)) in fleet.iter().enumerate() {
        tick.tick().await;
        let c = admin
            .clone()
            .with_workspace_id(Some(*id))
            .with_token(Some(token.clone()));
        let hb = Heartbeat {
            workspace_id: id.to_string(),
            uptime_seconds: n as i32,
            ..Default::default()
        };
        beats.spawn(async move { c.heartbeat(&hb).await.is_ok() });
    }
    let mut failed = 0;
    while let Some(ok) = beats.join_next().await {
        if !ok.unwrap_or(false) {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "heartbeats failed");
    let window = began.elapsed().as_secs_f64();
    let (rss_after, ticks_after) = usage(pid);
    let cpu_percent = (ticks_after - ticks_before) as f64 / 100.0 / window * 100.0;

    let liveness = admin
        .request(Method::GET, "/admin/liveness", None)
        .await
        .unwrap()
        .json()
        .unwrap();
    let took = |task: &str| {
        liveness["subsystems"][task]["last_duration_seconds"]
            .as_f64()
            .unwrap_or(f64::NAN)
            * 1000.0
    };
    let health_ms = median(&admin, "/health", 51).await;
    let list_ms = median(&admin, "/workspaces", 11).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    Outcome {
        backend,
        registered_per_second,
        cpu_percent,
        rss_after,
        bytes_per_workspace: rss_after.saturating_sub(rss_before) as f64 / FLEET as f64,
        liveness_ms: took("liveness"),
        flush_ms: took("heartbeat-flush"),
        list_ms,
        health_ms,
    }
}
