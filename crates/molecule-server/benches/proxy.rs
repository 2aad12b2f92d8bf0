//! A2A proxy overhead, in one run, against the same agent: direct, through
//! `molecule serve` (`POST /workspaces/:id/a2a`), and through nginx
//! `proxy_pass`, at concurrency 1 and 64: p50/p99 latency and requests/s,
//! printed with ratios. Every server is its own process (release builds of
//! `molecule-agent` and `molecule`, the machine's nginx), and the load
//! comes from wrk (one thread): a load generator light enough not to take
//! the 2 cores from the servers it measures.
//!
//! Run: `cargo xtask bench proxy` (builds the binaries, installs nginx and
//! wrk from the machine's packages when missing). Targets (DESIGN.md): ≤ 1 ms added
//! at p50 over the direct call, ≥ 0.8× nginx's throughput.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "common/proc.rs"]
mod proc_stat;
use proc_stat::{cpu_seconds, stat_fields};

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WARMUP_SECS: u64 = 1;
const RUN_SECS: u64 = 3;
/// Each path is measured this many times, interleaved with the others (in
/// a rotating order), and the median round is reported: drift of a shared
/// 2-core machine then hits every path alike.
const ROUNDS: usize = 3;
/// A process and its direct children (nginx's master and its workers).
fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let ppid = stat_fields(child).and_then(|f| f.get(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            pids.push(child);
        }
    }
    pids
}

/// A child process stopped on drop: SIGTERM first (nginx's master then
/// stops its workers), SIGKILL if it lingers.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `target/release`, where `cargo xtask bench proxy` built the binaries.
fn release_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn binary(name: &str) -> PathBuf {
    let p = release_dir().join(name);
    assert!(
        p.is_file(),
        "{} missing: run `cargo xtask bench proxy` (it builds it)",
        p.display()
    );
    p
}

async fn wait_http(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if client.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not come up");
}

#[derive(Clone)]
struct Result_ {
    p50: Duration,
    p99: Duration,
    rps: f64,
    errors: u64,
    /// CPU time the proxy in the path (molecule, nginx) spent per request.
    proxy_cpu_us: Option<f64>,
    /// CPU time the agent spent per request.
    agent_cpu_us: f64,
}

/// The request every path gets: a `message/send` the echo agent answers.
fn request_body() -> String {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "message/send",
        "params": { "message": { "role": "user", "messageId": "bench",
            "parts": [{ "kind": "text", "text": "ping" }] } }
    })
    .to_string()
}

/// The wrk script that POSTs [`request_body`].
fn wrk_script(dir: &Path) -> PathBuf {
    let path = dir.join("post.lua");
    let script = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = {}\n",
        // A JSON string literal is a Lua one for this ASCII body.
        serde_json::to_string(&request_body()).unwrap()
    );
    std::fs::write(&path, script).unwrap();
    path
}

/// A wrk duration (`812.00us`, `1.23ms`, `2.01s`, `1.50m`).
fn wrk_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// What one wrk run reports.
#[derive(Debug, PartialEq)]
struct WrkReport {
    p50: Duration,
    p99: Duration,
    requests: u64,
    rps: f64,
    errors: u64,
}

fn parse_wrk(out: &str) -> Option<WrkReport> {
    let mut p50 = None;
    let mut p99 = None;
    let mut requests = None;
    let mut rps = None;
    let mut errors = 0u64;
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", t] => p50 = wrk_duration(t),
            ["99%", t] => p99 = wrk_duration(t),
            [n, "requests", "in", ..] => requests = n.parse().ok(),
            ["Requests/sec:", n] => rps = n.parse().ok(),
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                for pair in rest.chunks(2) {
                    errors += pair.get(1)?.trim_end_matches(',').parse::<u64>().ok()?;
                }
            }
            _ => {}
        }
    }
    Some(WrkReport {
        p50: p50?,
        p99: p99?,
        requests: requests?,
        rps: rps?,
        errors,
    })
}

/// Drive `url` with wrk (one thread, `concurrency` keep-alive connections)
/// for `secs` seconds.
fn load(script: &Path, url: &str, concurrency: usize, secs: u64) -> WrkReport {
    let out = Command::new("wrk")
        .args(["-t1", "--latency", "--timeout", "10s"])
        .arg(format!("-c{concurrency}"))
        .arg(format!("-d{secs}s"))
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()
        .expect("run wrk (cargo xtask bench proxy installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&text).unwrap_or_else(|| panic!("cannot read wrk's report:\n{text}"))
}

/// One measured round of `load` (after a warm-up), with the CPU the agent
/// and the proxy (when there is one) spent per request.
fn measured(
    script: &Path,
    url: &str,
    concurrency: usize,
    agent_pids: &[u32],
    proxy_pids: &[u32],
) -> Result_ {
    load(script, url, concurrency, WARMUP_SECS);
    let (agent0, proxy0) = (cpu_seconds(agent_pids), cpu_seconds(proxy_pids));
    let w = load(script, url, concurrency, RUN_SECS);
    let per_request = |cpu: f64| cpu * 1e6 / (w.requests.max(1) as f64);
    Result_ {
        p50: w.p50,
        p99: w.p99,
        rps: w.rps,
        errors: w.errors,
        agent_cpu_us: per_request(cpu_seconds(agent_pids) - agent0),
        proxy_cpu_us: (!proxy_pids.is_empty())
            .then(|| per_request(cpu_seconds(proxy_pids) - proxy0)),
    }
}

/// The round with the median throughput.
fn median(mut rounds: Vec<Result_>) -> Result_ {
    rounds.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    rounds[rounds.len() / 2].clone()
}

fn nginx_conf(dir: &Path, listen: u16, upstream: u16) -> String {
    format!(
        "daemon off;\nmaster_process on;\nworker_processes auto;\nuser root;\n\
         error_log {d}/error.log warn;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           upstream agent {{ server 127.0.0.1:{upstream}; keepalive 128; }}\n\
           server {{\n    listen 127.0.0.1:{listen};\n\
             location / {{ proxy_pass http://agent; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n  }}\n}}\n",
        d = dir.display()
    )
}

/// Start `molecule serve` with an external workspace registered at the
/// agent; returns the process and the workspace's A2A URL.
async fn start_molecule(
    client: &reqwest::Client,
    data: &Path,
    agent_port: u16,
    activity: &str,
) -> (Killed, String) {
    let port = free_port();
    let child = Killed(
        Command::new(binary("molecule"))
            .arg("serve")
            .env("PORT", port.to_string())
            .env("MOLECULE_DATA_DIR", data)
            .env("MOLECULE_PROVISIONER", "none")
            .env("MOLECULE_A2A_ACTIVITY", activity)
            .env("RATE_LIMIT", "1000000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start molecule serve"),
    );
    let platform = format!("http://127.0.0.1:{port}");
    wait_http(client, &format!("{platform}/health")).await;
    let created: Value = client
        .post(format!("{platform}/workspaces"))
        .json(&json!({ "name": "bench-agent", "runtime": "external", "external": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().expect("workspace id").to_string();
    let reg = client
        .post(format!("{platform}/registry/register"))
        .json(
            &json!({ "id": id, "url": format!("http://localhost:{agent_port}"), "agent_card": {} }),
        )
        .send()
        .await
        .unwrap();
    assert!(
        reg.status().is_success(),
        "register: {}",
        reg.text().await.unwrap()
    );
    (child, format!("{platform}/workspaces/{id}/a2a"))
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("molecule-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    molecule_client::install_crypto_provider();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .unwrap();

    // The agent.
    let agent_port = free_port();
    let agent_proc = Killed(
        Command::new(binary("molecule-agent"))
            .env("AGENT_HOST", "127.0.0.1")
            .env("AGENT_PORT", agent_port.to_string())
            .env("MOLECULE_CONFIG_DIR", &dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start molecule-agent"),
    );
    let agent = format!("http://127.0.0.1:{agent_port}");
    wait_http(&client, &format!("{agent}/.well-known/agent-card.json")).await;

    // molecule serve, SQLite, no provisioner, no rate limit in the way:
    // once as configured by default (every call logged to activity_logs)
    // and once with MOLECULE_A2A_ACTIVITY=off.
    let (molecule_proc, molecule_url) =
        start_molecule(&client, &dir.join("data"), agent_port, "on").await;
    let (bare_proc, bare_url) =
        start_molecule(&client, &dir.join("data-bare"), agent_port, "off").await;

    // nginx in front of the same agent.
    let nginx_port = free_port();
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx_conf(&dir, nginx_port, agent_port)).unwrap();
    let nginx_proc = Killed(
        Command::new("nginx")
            .args(["-c", conf.to_str().unwrap(), "-p", dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .expect("start nginx (cargo xtask bench proxy installs it)"),
    );
    let nginx = format!("http://127.0.0.1:{nginx_port}");
    wait_http(&client, &format!("{nginx}/.well-known/agent-card.json")).await;

    // Every path answers the benchmark's request like the agent itself.
    for url in [&agent, &molecule_url, &bare_url, &nginx] {
        let r = client
            .post(url.as_str())
            .header("content-type", "application/json")
            .body(request_body())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        let v: Value = r.json().await.unwrap();
        assert!(v["result"].is_object(), "{url} answered {v}");
    }
    let script = wrk_script(&dir);

    let agent_pids = [agent_proc.0.id()];
    let targets = [
        ("direct", agent.clone(), vec![]),
        ("molecule", molecule_url, vec![molecule_proc.0.id()]),
        ("mol-nolog", bare_url, vec![bare_proc.0.id()]),
        ("nginx", nginx.clone(), with_children(nginx_proc.0.id())),
    ];
    println!(
        "A2A message/send to one molecule-agent (echo): {ROUNDS} interleaved rounds of \
         {RUN_SECS} s per path (after {WARMUP_SECS} s of warm-up), load from wrk (one thread), median round shown; \
         cpu/req = CPU time (user+system) per request of the proxy and of the agent"
    );
    println!(
        "{:<10} {:>5} {:>10} {:>10} {:>10} {:>7} {:>14} {:>14}",
        "path", "conc", "p50", "p99", "req/s", "errors", "proxy cpu/req", "agent cpu/req"
    );
    let mut results = std::collections::HashMap::new();
    for conc in [1usize, 64] {
        let mut rounds: Vec<Vec<Result_>> = vec![Vec::new(); targets.len()];
        for round in 0..ROUNDS {
            for i in 0..targets.len() {
                let i = (i + round) % targets.len();
                let (_, url, proxy_pids) = &targets[i];
                rounds[i].push(measured(&script, url, conc, &agent_pids, proxy_pids));
            }
        }
        for ((name, _, _), rounds) in targets.iter().zip(rounds) {
            let r = median(rounds);
            println!(
                "{:<10} {:>5} {:>8.3}ms {:>8.3}ms {:>10.0} {:>7} {:>14} {:>12.1}us",
                name,
                conc,
                r.p50.as_secs_f64() * 1e3,
                r.p99.as_secs_f64() * 1e3,
                r.rps,
                r.errors,
                r.proxy_cpu_us
                    .map_or("-".to_string(), |us| format!("{us:.1}us")),
                r.agent_cpu_us,
            );
            results.insert((*name, conc), r);
        }
    }
    println!();
    for conc in [1usize, 64] {
        let d = &results[&("direct", conc)];
        let m = &results[&("molecule", conc)];
        let b = &results[&("mol-nolog", conc)];
        let n = &results[&("nginx", conc)];
        println!(
            "concurrency {conc:>2}: molecule adds {:.3} ms at p50 (nginx adds {:.3} ms); \
             throughput molecule/nginx = {:.2}x, molecule/direct = {:.2}x; \
             without activity rows: adds {:.3} ms, {:.2}x nginx",
            (m.p50.as_secs_f64() - d.p50.as_secs_f64()) * 1e3,
            (n.p50.as_secs_f64() - d.p50.as_secs_f64()) * 1e3,
            m.rps / n.rps,
            m.rps / d.rps,
            (b.p50.as_secs_f64() - d.p50.as_secs_f64()) * 1e3,
            b.rps / n.rps,
        );
    }
    let (m, n) = (&results[&("molecule", 64)], &results[&("nginx", 64)]);
    if let (Some(m), Some(n)) = (m.proxy_cpu_us, n.proxy_cpu_us) {
        println!(
            "proxy CPU per request at concurrency 64: molecule {m:.1} us, nginx {n:.1} us ({:.2}x)",
            m / n
        );
    }
    println!("targets: <= 1 ms added at p50; >= 0.8x nginx throughput");
    let _ = std::fs::remove_dir_all(&dir);
}
