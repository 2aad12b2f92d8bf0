//! Workspaces that really run, on both runtime backends: local child
//! processes (always) and Docker (the real engine; required when CI=true).
//! The same scenarios run on each backend through `backend_tests!`.

use molecule_client::Client;
use molecule_server::config::ProvisionerChoice;
use molecule_types::WorkspaceStatus;
use molecule_types::dto::{CreateWorkspace, Workspace};
use std::time::Duration;
use uuid::Uuid;

use crate::{TestServer, eventually, start_with};

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Backend {
    Local,
    Docker,
}

/// The `molecule-agent` binary built next to this test binary.
pub fn agent_program() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join("molecule-agent");
    assert!(
        p.is_file(),
        "{} missing: build it with `cargo build -p molecule-agent` (cargo xtask test builds the whole workspace)",
        p.display()
    );
    p
}

pub fn docker_ready() -> bool {
    let ok = std::process::Command::new("docker")
        .args(["image", "inspect", &image()])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "CI=true: Docker and the image {} are required (cargo xtask image)",
            image()
        );
    }
    if !ok {
        eprintln!(
            "note: Docker or {} unavailable; Docker lifecycle test not run (run `cargo xtask image`)",
            image()
        );
    }
    ok
}

pub fn image() -> String {
    format!("molecule/agent:{}", env!("CARGO_PKG_VERSION"))
}

/// A server whose workspaces run on `backend`, with fast sweeps and heartbeats.
pub async fn start_backend(
    backend: Backend,
    tweak: impl FnOnce(&mut molecule_server::Config),
) -> Option<TestServer> {
    if backend == Backend::Docker && !docker_ready() {
        return None;
    }
    Some(
        start_with(move |c| {
            backend_config(backend, c);
            tweak(c);
        })
        .await,
    )
}

/// The configuration of [`start_backend`]'s servers.
pub fn backend_config(backend: Backend, c: &mut molecule_server::Config) {
    c.provisioner = match backend {
        Backend::Local => ProvisionerChoice::Local,
        Backend::Docker => ProvisionerChoice::Docker,
    };
    c.agent_program = Some(agent_program());
    c.agent_image = image();
    c.health_sweep_every = Duration::from_millis(300);
    c.agent_heartbeat_every = Duration::from_millis(500);
    c.liveness_ttl = Duration::from_secs(20);
    c.governor.backoff_start = Duration::from_millis(200);
}

pub async fn wait_status(
    c: &Client,
    id: Uuid,
    want: WorkspaceStatus,
    within: Duration,
) -> Workspace {
    let found = eventually(within, || async {
        let ws = c.get_workspace(id).await.ok()?;
        (ws.status == want).then_some(ws)
    })
    .await;
    match found {
        Some(ws) => ws,
        None => panic!(
            "workspace {id} never became {want}: {:?}",
            c.get_workspace(id).await
        ),
    }
}

/// Wait (up to 10 s) until an event of `event_type` for `id` is on record. A status
/// change commits before its event row, so a test that saw the status must
/// still wait for the event.
pub async fn wait_event(c: &Client, id: Uuid, event_type: &str) {
    let found = eventually(Duration::from_secs(10), || async {
        let events = c.events(Some(id)).await.ok()?;
        events
            .iter()
            .any(|e| e.event_type == event_type)
            .then_some(())
    })
    .await;
    assert!(
        found.is_some(),
        "no {event_type} event for {id}: {:?}",
        c.events(Some(id)).await
    );
}

/// Kill the workspace's runtime behind the platform's back.
pub fn kill_runtime(backend: Backend, id: Uuid) {
    match backend {
        Backend::Docker => {
            let out = std::process::Command::new("docker")
                .args(["kill", &molecule_types::container_name(id)])
                .output()
                .expect("docker kill");
            assert!(
                out.status.success(),
                "docker kill: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Backend::Local => {
            let needle = format!("WORKSPACE_ID={id}");
            let mut killed = 0;
            for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
                let Ok(env) = std::fs::read(entry.path().join("environ")) else {
                    continue;
                };
                if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
                    let pid = entry.file_name().to_string_lossy().to_string();
                    let _ = std::process::Command::new("kill")
                        .args(["-9", &pid])
                        .status();
                    killed += 1;
                }
            }
            assert!(killed > 0, "no process carries {needle}");
        }
    }
}

const BOOT: Duration = Duration::from_secs(60);

pub async fn create_runs_kill_recovers_pause_resume_delete(backend: Backend) {
    let Some(t) = start_backend(backend, |_| {}).await else {
        return;
    };
    let id = t
        .client
        .create_workspace(&CreateWorkspace {
            name: "runner".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    wait_status(&t.client, id, WorkspaceStatus::Online, BOOT).await;
    // The agent may register a moment before the platform records the
    // host-reachable URL it published.
    let ws = eventually(BOOT, || async {
        let ws = t.client.get_workspace(id).await.ok()?;
        ws.url.starts_with("http://127.0.0.1:").then_some(ws)
    })
    .await
    .expect("the host-reachable URL is recorded");
    assert!(ws.agent_card.is_some(), "the agent registered its card");

    let mut events = t.client.subscribe().await.unwrap();
    kill_runtime(backend, id);
    let is_mine = |e: &molecule_types::EventEnvelope| e.workspace_id == id.to_string();
    let decision = events
        .next_matching(
            |e| is_mine(e) && e.event == "WORKSPACE_RESTART_DECISION",
            BOOT,
        )
        .await
        .unwrap();
    let decision = decision.expect("a restart decision is recorded");
    assert_eq!(
        decision.payload["decision"], "restart",
        "{}",
        decision.payload
    );
    assert!(
        decision.payload["reason"]
            .as_str()
            .unwrap()
            .contains("health sweep"),
        "{}",
        decision.payload
    );
    let back = events
        .next_matching(|e| is_mine(e) && e.event == "WORKSPACE_ONLINE", BOOT)
        .await
        .unwrap();
    assert!(back.is_some(), "the restarted agent registers again");
    assert_eq!(
        t.client.get_workspace(id).await.unwrap().status,
        WorkspaceStatus::Online
    );

    let tok = t.client.test_token(id).await.unwrap().auth_token;
    let me = t.as_workspace(id, &tok);
    let paused = me
        .request(
            molecule_client::Method::POST,
            &format!("/workspaces/{id}/pause"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(paused.status, 200, "{}", paused.text());
    assert_eq!(paused.json().unwrap()["paused_count"], 1);
    let ws = t.client.get_workspace(id).await.unwrap();
    assert_eq!((ws.status, ws.url.as_str()), (WorkspaceStatus::Paused, ""));
    assert!(
        t.server
            .app
            .provisioner()
            .unwrap()
            .inspect(id)
            .await
            .is_gone(),
        "pause stops the runtime"
    );
    let resumed = me
        .request(
            molecule_client::Method::POST,
            &format!("/workspaces/{id}/resume"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(resumed.status, 200, "{}", resumed.text());
    wait_status(&t.client, id, WorkspaceStatus::Online, BOOT).await;

    let restart = me
        .request(
            molecule_client::Method::POST,
            &format!("/workspaces/{id}/restart"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (restart.status, restart.json().unwrap()["status"].clone()),
        (200, "provisioning".into())
    );
    wait_status(&t.client, id, WorkspaceStatus::Online, BOOT).await;

    let told = eventually(BOOT, || async {
        let n = t
            .server
            .app
            .metrics()
            .get("molecule_restart_context_sent_total", &[]);
        (n >= 1.0).then_some(n)
    })
    .await;
    assert!(
        told.is_some(),
        "the agent is told why it was restarted (restarts in quick succession share one message)"
    );

    t.client.delete_workspace(id, true).await.unwrap();
    let obs = t.server.app.provisioner().unwrap().inspect(id).await;
    if obs != molecule_provisioner::Observation::NotFound {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for e in t.client.events(Some(id)).await.unwrap().iter().rev() {
            eprintln!("{} {} {}", e.created_at, e.event_type, e.payload);
        }
    }
    assert_eq!(obs, molecule_provisioner::Observation::NotFound);
    if backend == Backend::Docker {
        let vol = std::process::Command::new("docker")
            .args([
                "volume",
                "inspect",
                &format!("{}-configs", molecule_types::container_name(id)),
            ])
            .output()
            .unwrap();
        assert!(!vol.status.success(), "the volume is removed too");
    }
}

pub async fn crash_loop_ends_failed(backend: Backend) {
    let Some(t) = start_backend(backend, |c| {
        c.workspace_env
            .push(("MOLECULE_AGENT_EXIT_AT_START".into(), "3".into()))
    })
    .await
    else {
        return;
    };
    let id = t
        .client
        .create_workspace(&CreateWorkspace {
            name: "crashy".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let ws = wait_status(&t.client, id, WorkspaceStatus::Failed, BOOT).await;
    assert!(
        ws.status_reason
            .as_deref()
            .unwrap_or("")
            .contains("crash loop"),
        "{:?}",
        ws.status_reason
    );
    let events = t.client.events(Some(id)).await.unwrap();
    let restarts = events
        .iter()
        .filter(|e| {
            e.event_type == "WORKSPACE_RESTART_DECISION" && e.payload["decision"] == "restart"
        })
        .count();
    assert_eq!(restarts, 3, "exactly three restarts before giving up");
    // No further automatic restarts, after several sweeps.
    crate::ticks(&t.server.app, "health-sweep", 3).await;
    crate::ticks(&t.server.app, "liveness", 2).await;
    assert_eq!(
        t.client.get_workspace(id).await.unwrap().status,
        WorkspaceStatus::Failed
    );
    t.client.delete_workspace(id, true).await.unwrap();
}

pub async fn watchdog_fails_silent_agents(backend: Backend) {
    let Some(t) = start_backend(backend, |c| {
        c.provision_timeout = Duration::from_secs(2);
        c.platform_url = Some("http://platform.invalid:1".into());
    })
    .await
    else {
        return;
    };
    let id = t
        .client
        .create_workspace(&CreateWorkspace {
            name: "silent".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let ws = wait_status(&t.client, id, WorkspaceStatus::Failed, BOOT).await;
    assert!(ws.status_reason.unwrap().contains("did not register"));
    t.client.delete_workspace(id, true).await.unwrap();
}

backend_tests!(
    create_runs_kill_recovers_pause_resume_delete,
    crash_loop_ends_failed,
    watchdog_fails_silent_agents
);

/// A restarted platform adopts running containers without restarting them
/// (Docker only: local child processes end with the platform).
#[tokio::test]
async fn docker_platform_restart_adopts_running_containers() {
    if !docker_ready() {
        return;
    }
    let (db, _dir) = crate::fresh_database().await;
    let data = crate::TempDir::default();
    let boot = |db: molecule_server::config::Database| {
        let data = data.0.clone();
        async move {
            let mut c = molecule_server::Config::for_tests(db);
            c.data_dir = data;
            c.provisioner = ProvisionerChoice::Docker;
            c.agent_image = image();
            c.health_sweep_every = Duration::from_millis(300);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let s = molecule_server::Server::start(c, listener).await.unwrap();
            let client = Client::new(s.url());
            (s, client)
        }
    };
    let (s, c) = boot(db.clone()).await;
    let id = c
        .create_workspace(&CreateWorkspace {
            name: "adopted".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    wait_status(&c, id, WorkspaceStatus::Online, BOOT).await;
    let started_at = |id: Uuid| {
        let out = std::process::Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{.State.StartedAt}}",
                &molecule_types::container_name(id),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before = started_at(id);
    s.shutdown().await.unwrap();

    let (s, c) = boot(db).await;
    // Several sweeps pass; the container is neither restarted nor reaped.
    crate::ticks(&s.app, "health-sweep", 3).await;
    crate::ticks(&s.app, "provision-watchdog", 2).await;
    assert_eq!(started_at(id), before, "the container was not restarted");
    assert_eq!(
        c.get_workspace(id).await.unwrap().status,
        WorkspaceStatus::Online
    );
    let events = c.events(Some(id)).await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| e.event_type == "WORKSPACE_RESTART_DECISION"),
        "no restart decision after adoption"
    );
    c.delete_workspace(id, true).await.unwrap();
    s.shutdown().await.unwrap();
}

/// A missing image is never pulled: provisioning fails with a reason that
/// names the build command.
#[tokio::test]
async fn docker_missing_image_fails_with_the_build_command() {
    let Some(t) = start_backend(Backend::Docker, |c| {
        c.runtime_images
            .insert("custom".into(), "molecule/does-not-exist:1".into());
    })
    .await
    else {
        return;
    };
    let req = CreateWorkspace {
        name: "no-image".into(),
        runtime: Some("custom".into()),
        ..Default::default()
    };
    let id = t.client.create_workspace(&req).await.unwrap().id;
    let ws = wait_status(&t.client, id, WorkspaceStatus::Failed, BOOT).await;
    let reason = ws.status_reason.unwrap_or_default();
    assert!(
        reason.contains("cargo xtask image") && reason.contains("never pulled"),
        "{reason}"
    );
    wait_event(&t.client, id, "WORKSPACE_PROVISION_FAILED").await;
}
