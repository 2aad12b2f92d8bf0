//! Provisioning speed and recovery, against the real Docker engine.
//!
//! 1. Baseline: the same 20 containers (image, network, configs volume,
//!    127.0.0.1 port) started with `docker run` (all at once), timed until
//!    every agent answers on its published port.
//! 2. Molecule: 20 workspaces created through the API, timed until every one
//!    is `online` (the agent registered with the platform).
//! 3. Recovery: `docker kill` one workspace's container and time until it is
//!    `online` again, with the default 15 s health sweep.
//!
//! Run: `cargo xtask bench provisioning` (needs `cargo xtask image` first).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use molecule_types::WorkspaceStatus;
use molecule_types::dto::CreateWorkspace;
use std::time::{Duration, Instant};

#[path = "common/docker.rs"]
mod common;

use common::{
    DEADLINE, agent_image, docker, docker_run_baseline, start_docker_platform, wait_all_online,
};

const N: usize = 20;

#[tokio::main]
async fn main() {
    let image = agent_image();
    eprintln!("baseline: {N} × docker run …");
    let baseline = docker_run_baseline(&image, N).await;

    eprintln!("molecule: {N} workspaces through the API …");
    let (server, client, dir) = start_docker_platform(&image).await;
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..N {
        let req = CreateWorkspace {
            name: format!("bench-{i}"),
            ..Default::default()
        };
        ids.push(client.create_workspace(&req).await.expect("create").id);
    }
    wait_all_online(&client, &ids, started).await;
    let molecule = started.elapsed();

    eprintln!("recovery: docker kill one container …");
    let victim = ids[0];
    let killed_at = Instant::now();
    assert!(
        docker(&["kill", &molecule_types::container_name(victim)])
            .status
            .success()
    );
    // Wait for the platform to notice (status leaves online), then to recover.
    loop {
        let ws = client.get_workspace(victim).await.expect("get");
        if ws.status != WorkspaceStatus::Online || killed_at.elapsed() > DEADLINE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let detected = killed_at.elapsed();
    wait_all_online(&client, &[victim], killed_at).await;
    let recovered = killed_at.elapsed();

    for id in &ids {
        let _ = client.delete_workspace(*id, true).await;
    }
    server.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_dir_all(&dir);

    let ratio = molecule.as_secs_f64() / baseline.as_secs_f64();
    println!();
    println!(
        "provisioning benchmark: {N} containers of {image}, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("{:<44} {:>10}", "measurement", "seconds");
    println!(
        "{:<44} {:>10.2}",
        format!("docker run ×{N} until every agent answers"),
        baseline.as_secs_f64()
    );
    println!(
        "{:<44} {:>10.2}",
        format!("molecule: {N} workspaces until all online"),
        molecule.as_secs_f64()
    );
    println!(
        "{:<44} {:>9.2}x  (target ≤ 1.30: {})",
        "ratio molecule / docker run",
        ratio,
        if ratio <= 1.3 { "met" } else { "MISSED" }
    );
    println!(
        "{:<44} {:>10.2}",
        "docker kill → detected (status not online)",
        detected.as_secs_f64()
    );
    println!(
        "{:<44} {:>10.2}  (target ≤ 30: {})",
        "docker kill → online again",
        recovered.as_secs_f64(),
        if recovered <= Duration::from_secs(30) {
            "met"
        } else {
            "MISSED"
        }
    );
}
