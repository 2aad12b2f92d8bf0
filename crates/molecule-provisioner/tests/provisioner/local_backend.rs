//! The local backend with small shell scripts as the workspace program:
//! the same lifecycle and observation semantics as Docker.

use crate::support::{TempDir, eventually, spec, wait_for_observation};
use molecule_provisioner::{LocalProvisioner, Observation, ProvisionError, Provisioner};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

/// Writes its pid into its working directory, reports its environment and
/// config, then idles; exits 0 on SIGTERM.
const AGENT_SCRIPT: &str = r#"#!/bin/sh
echo $$ > pid
echo "started port=$PORT agent=$AGENT_URL workspace=$WORKSPACE_ID"
echo "config=$(cat "$MOLECULE_CONFIG_DIR/config.yaml")"
echo "secret=${MOLECULE_PROVISIONER_TEST_SECRET:-absent}"
echo "to stderr" >&2
trap 'echo "got TERM"; exit 0' TERM
while true; do sleep 0.1; done
"#;

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, body).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

async fn logs_containing(p: &LocalProvisioner, id: Uuid, needle: &str) -> String {
    eventually(needle, Duration::from_secs(10), || async {
        let logs = p.logs(id, 100).await.ok()?;
        logs.contains(needle).then_some(logs)
    })
    .await
}

#[tokio::test]
async fn local_workspace_lifecycle() {
    let tmp = TempDir::new();
    let program = script(&tmp.0, "agent.sh", AGENT_SCRIPT);
    let p = LocalProvisioner::new(tmp.0.join("data"));
    let mut s = spec(
        &program,
        2,
        &[("config.yaml", "name: local"), ("skills/x.md", "x")],
    );
    // A caller's container-style values must not win over the local ones.
    s.env.push(("AGENT_URL".into(), "http://ws-x:8000".into()));
    s.env.push(("PORT".into(), "8000".into()));
    let id = s.workspace_id;

    let started = p.ensure(&s).await.expect("ensure");
    assert!(!started.adopted);
    assert_eq!(started.internal_url, None);
    let port: u16 = started
        .url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .expect("loopback url");
    assert_eq!(p.inspect(id).await, Observation::Running);

    let logs = logs_containing(&p, id, "to stderr").await;
    assert!(
        logs.contains(&format!(
            "started port={port} agent=http://localhost:{port} workspace={id}"
        )),
        "{logs}"
    );
    assert!(logs.contains("config=name: local"), "{logs}");
    assert!(logs.contains("secret=absent"), "{logs}");
    let configs = p.configs_dir(id);
    assert_eq!(
        std::fs::read_to_string(configs.join("skills/x.md")).unwrap(),
        "x"
    );

    let again = p.ensure(&s).await.expect("ensure again");
    assert!(again.adopted);
    assert_eq!(again.url, started.url);

    let cmd = [
        "/bin/sh",
        "-c",
        "echo \"in $(pwd) port $PORT\"; echo err >&2; exit 5",
    ]
    .map(String::from);
    let out = p
        .exec(id, &cmd, Duration::from_secs(5))
        .await
        .expect("exec");
    assert_eq!(out.exit_code, Some(5));
    let workspace_dir = p.workspace_dir(id);
    assert!(
        out.output
            .contains(&format!("in {} port {port}", workspace_dir.display())),
        "{out:?}"
    );
    assert!(out.output.contains("err"), "{out:?}");
    let slow = ["/bin/sh", "-c", "sleep 5"].map(String::from);
    let timed_out = p.exec(id, &slow, Duration::from_millis(200)).await;
    assert!(
        matches!(timed_out, Err(ProvisionError::Failed(_))),
        "{timed_out:?}"
    );

    assert_eq!(p.list().await.unwrap(), vec![(id, Observation::Running)]);

    // Killed from outside: observed as exited with 128 + SIGKILL.
    let pid = std::fs::read_to_string(workspace_dir.join("pid")).expect("pid file");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .expect("kill");
    assert!(killed.success());
    wait_for_observation(&p, id, Observation::Exited { code: Some(137) }).await;
    assert_eq!(
        p.list().await.unwrap(),
        vec![(id, Observation::Exited { code: Some(137) })]
    );
    let exec_dead = p.exec(id, &cmd, Duration::from_secs(5)).await;
    assert!(
        matches!(exec_dead, Err(ProvisionError::Failed(_))),
        "{exec_dead:?}"
    );

    let respawned = p.ensure(&s).await.expect("respawn");
    assert!(!respawned.adopted);
    assert_eq!(p.inspect(id).await, Observation::Running);
    logs_containing(&p, id, "started port=").await;

    // The next start (another generation) replaces the running process of
    // the last one instead of adopting it.
    let pid_of = || std::fs::read_to_string(workspace_dir.join("pid")).unwrap_or_default();
    let before = pid_of();
    s.generation = "2".into();
    let next = p.ensure(&s).await.expect("ensure, next generation");
    assert!(!next.adopted);
    eventually("a new process", Duration::from_secs(10), || async {
        let now = pid_of();
        (!now.trim().is_empty() && now != before).then_some(())
    })
    .await;

    // Graceful: the script's TERM trap exits 0.
    p.stop(id).await.expect("stop");
    assert_eq!(p.inspect(id).await, Observation::Exited { code: Some(0) });
    logs_containing(&p, id, "got TERM").await;
    p.stop(id).await.expect("stop again");

    p.remove(id, true).await.expect("remove");
    assert_eq!(p.inspect(id).await, Observation::NotFound);
    assert!(!workspace_dir.exists(), "workspace dir kept");
    assert!(matches!(p.logs(id, 5).await, Err(ProvisionError::NotFound)));
    p.remove(id, true).await.expect("remove is idempotent");
}

#[tokio::test]
async fn local_stop_kills_a_process_that_ignores_sigterm() {
    let tmp = TempDir::new();
    let program = script(
        &tmp.0,
        "stubborn.sh",
        "#!/bin/sh\ntrap '' TERM\necho ready\nwhile true; do sleep 0.1; done\n",
    );
    let p = LocalProvisioner::new(tmp.0.join("data")).with_stop_grace(Duration::from_millis(300));
    let s = spec(&program, 2, &[]);
    let id = s.workspace_id;
    p.ensure(&s).await.expect("ensure");
    logs_containing(&p, id, "ready").await;
    p.stop(id).await.expect("stop");
    assert_eq!(p.inspect(id).await, Observation::Exited { code: Some(137) });
    p.remove(id, true).await.expect("remove");
}

#[tokio::test]
async fn local_crash_is_observed_with_its_exit_code() {
    let tmp = TempDir::new();
    let program = script(&tmp.0, "crash.sh", "#!/bin/sh\necho boom\nexit 3\n");
    let p = LocalProvisioner::new(tmp.0.join("data"));
    let s = spec(&program, 2, &[]);
    let id = s.workspace_id;
    p.ensure(&s).await.expect("ensure");
    wait_for_observation(&p, id, Observation::Exited { code: Some(3) }).await;
    logs_containing(&p, id, "boom").await;
    p.remove(id, false).await.expect("remove");
    assert_eq!(p.inspect(id).await, Observation::NotFound);
    assert!(
        p.workspace_dir(id).exists(),
        "remove without volumes kept files"
    );
}

#[tokio::test]
async fn local_missing_program_and_unknown_ids() {
    let tmp = TempDir::new();
    let p = LocalProvisioner::new(tmp.0.join("data"));
    let s = spec(&tmp.0.join("no-such-agent").display().to_string(), 2, &[]);
    let id = s.workspace_id;
    match p.ensure(&s).await {
        Err(ProvisionError::ImageMissing { image, .. }) => assert_eq!(image, s.image),
        other => panic!("expected ImageMissing, got {other:?}"),
    }
    assert_eq!(p.inspect(id).await, Observation::NotFound);
    p.stop(id).await.expect("stop of nothing");
    p.remove(id, true).await.expect("remove of nothing");
    let cmd = ["true".to_string()];
    let exec = p.exec(id, &cmd, Duration::from_secs(1)).await;
    assert!(matches!(exec, Err(ProvisionError::NotFound)), "{exec:?}");
    assert!(p.list().await.unwrap().is_empty());
    assert_eq!(p.platform_listen_ip(), None);
    assert_eq!(p.kind(), "local");

    let mut bad = spec("/bin/true", 2, &[("../escape", "x")]);
    bad.workspace_id = Uuid::new_v4();
    let refused = p.ensure(&bad).await;
    assert!(
        matches!(refused, Err(ProvisionError::Failed(_))),
        "{refused:?}"
    );
}
