//! Org import against the real Docker engine.
//!
//! 1. Baseline: 50 containers (image, network, configs volume, 127.0.0.1
//!    port, as the Docker provisioner makes them) started with `docker run`
//!    all at once, timed until every agent answers on its published port.
//! 2. Molecule: one `POST /org/import` of an org of 50 workspaces (a root,
//!    7 leads, 42 members, each with a system prompt and a schedule), timed
//!    until every workspace is `online` (its agent registered).
//!
//! Prints the ratio (target ≤ 1.3×). Run: `cargo xtask bench org-import`.
#![allow(clippy::unwrap_used)] // benchmark code: a failed unwrap is a failed run

#[path = "common/docker.rs"]
mod common;

use common::{agent_image, docker_run_baseline, start_docker_platform, wait_all_online};
use molecule_client::Method;
use serde_json::{Value, json};
use std::time::Instant;
use uuid::Uuid;

const LEADS: usize = 7;
const MEMBERS_PER_LEAD: usize = 6;
const N: usize = 1 + LEADS + LEADS * MEMBERS_PER_LEAD;

fn node(name: String, children: Vec<Value>) -> Value {
    json!({
        "name": name,
        "role": "benchmark",
        "system_prompt": format!("You are {name}."),
        "schedules": [{"name": "daily", "cron_expr": "0 9 * * *", "prompt": "Report."}],
        "children": children,
    })
}

#[tokio::main]
async fn main() {
    let image = agent_image();
    eprintln!("baseline: {N} × docker run …");
    let baseline = docker_run_baseline(&image, N).await;

    eprintln!("molecule: one org import of {N} workspaces …");
    let (server, client, dir) = start_docker_platform(&image).await;
    let leads: Vec<Value> = (0..LEADS)
        .map(|l| {
            let members = (0..MEMBERS_PER_LEAD)
                .map(|m| node(format!("member-{l}-{m}"), Vec::new()))
                .collect();
            node(format!("lead-{l}"), members)
        })
        .collect();
    let org = json!({"template": {
        "name": "bench",
        "defaults": {"tier": 2},
        "workspaces": [node("root".into(), leads)],
    }});
    let started = Instant::now();
    let r = client
        .request(Method::POST, "/org/import", Some(&org))
        .await
        .expect("import");
    let answered = started.elapsed();
    assert_eq!(r.status, 201, "{:?}", r.json());
    let body = r.json().unwrap();
    let ids: Vec<Uuid> = body["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| serde_json::from_value(w["id"].clone()).unwrap())
        .collect();
    assert_eq!(ids.len(), N);
    wait_all_online(&client, &ids, started).await;
    let molecule = started.elapsed();

    let _ = client.delete_workspace(ids[0], true).await;
    server.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_dir_all(&dir);

    let ratio = molecule.as_secs_f64() / baseline.as_secs_f64();
    println!();
    println!(
        "org import benchmark: {N} workspaces of {image}, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("{:<48} {:>10}", "measurement", "seconds");
    println!(
        "{:<48} {:>10.2}",
        format!("docker run ×{N} until every agent answers"),
        baseline.as_secs_f64()
    );
    println!(
        "{:<48} {:>10.2}",
        "molecule: POST /org/import answered",
        answered.as_secs_f64()
    );
    println!(
        "{:<48} {:>10.2}",
        format!("molecule: import until all {N} online"),
        molecule.as_secs_f64()
    );
    println!(
        "{:<48} {:>9.2}x  (target ≤ 1.30: {})",
        "ratio molecule / docker run",
        ratio,
        if ratio <= 1.3 { "met" } else { "MISSED" }
    );
}
