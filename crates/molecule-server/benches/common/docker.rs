//! What the Docker benchmarks share: the `docker run` baseline (the same
//! containers the Docker provisioner makes: image, network, configs volume,
//! 127.0.0.1 port) and waiting for workspaces to come online.

use molecule_client::Client;
use molecule_server::config::{Config, Database, ProvisionerChoice};
use molecule_server::{RunningServer, Server};
use molecule_types::WorkspaceStatus;
use std::process::Command;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const DEADLINE: Duration = Duration::from_secs(300);

pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI")
}

/// The agent image of this version; panics with the build command when
/// it is missing.
pub fn agent_image() -> String {
    let image = format!("molecule/agent:{}", env!("CARGO_PKG_VERSION"));
    assert!(
        docker(&["image", "inspect", &image]).status.success(),
        "{image} missing: run `cargo xtask image`"
    );
    image
}

/// `n` × `docker run` of `image` all at once, timed until every agent
/// answers on its published port; the containers are removed afterwards.
pub async fn docker_run_baseline(image: &str, n: usize) -> Duration {
    let _ = docker(&[
        "network",
        "create",
        "--label",
        "molecule.managed=true",
        "molecule-net",
    ]);
    let tag = Uuid::new_v4().simple().to_string()[..8].to_string();
    let started = Instant::now();
    let children: Vec<_> = (0..n)
        .map(|i| {
            Command::new("docker")
                .args([
                    "run",
                    "-d",
                    "--name",
                    &format!("bench-{tag}-{i}"),
                    "--network",
                    "molecule-net",
                    "-v",
                    &format!("bench-{tag}-{i}-configs:/configs"),
                    "-p",
                    "127.0.0.1::8000",
                    image,
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("docker run")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("docker run").success());
    }
    molecule_client::install_crypto_provider();
    let http = reqwest::Client::new();
    for i in 0..n {
        let out = docker(&["port", &format!("bench-{tag}-{i}"), "8000/tcp"]);
        let addr = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let url = format!("http://{addr}/health");
        while http
            .get(&url)
            .send()
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            assert!(
                started.elapsed() < DEADLINE,
                "baseline container {i} never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let baseline = started.elapsed();
    for i in 0..n {
        let _ = docker(&["rm", "-f", "-v", &format!("bench-{tag}-{i}")]);
        let _ = docker(&["volume", "rm", &format!("bench-{tag}-{i}-configs")]);
    }
    baseline
}

/// Wait until every workspace is online (panics on `failed` or after
/// [`DEADLINE`] since `since`).
pub async fn wait_all_online(client: &Client, ids: &[Uuid], since: Instant) {
    for id in ids {
        loop {
            let ws = client.get_workspace(*id).await.expect("get");
            match ws.status {
                WorkspaceStatus::Online => break,
                WorkspaceStatus::Failed => panic!("workspace {id} failed: {:?}", ws.status_reason),
                _ => {}
            }
            assert!(
                since.elapsed() < DEADLINE,
                "workspace {id} never came online"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A platform on a fresh SQLite database in a temporary directory (the
/// caller removes it), running workspaces as containers of `image` with
/// the default 15 s health sweep.
pub async fn start_docker_platform(image: &str) -> (RunningServer, Client, std::path::PathBuf) {
    let tag = Uuid::new_v4().simple().to_string()[..8].to_string();
    let dir = std::env::temp_dir().join(format!("molecule-bench-{tag}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut config = Config::for_tests(Database::Sqlite(dir.join("bench.db")));
    config.data_dir = dir.clone();
    config.provisioner = ProvisionerChoice::Docker;
    config.agent_image = image.to_string();
    config.health_sweep_every = Duration::from_secs(15);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = Server::start(config, listener).await.expect("server");
    let client = Client::new(server.url());
    (server, client, dir)
}
