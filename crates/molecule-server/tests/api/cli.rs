//! The `molecule` command line (issue 17) as a user runs it: the built
//! binary against a real server, every command group, `--output json` and
//! `yaml` parsed back, errors as one line with the server's message, and the
//! exit codes (0 done, 1 error, 2 usage).

use serde_json::Value;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::{TempDir, start};

/// `molecule <args>` against `url`, with its own config file. Run without
/// blocking: the server under test shares this test's runtime.
async fn molecule(url: &str, config: &TempDir, args: &[&str]) -> Output {
    let mut all = vec!["--url", url];
    all.extend_from_slice(args);
    run_with_config(config, &all).await
}

/// `molecule <args>` with its own config file and no connection settings
/// from the environment.
async fn run_with_config(config: &TempDir, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_molecule"))
        .args(args)
        .env("MOLECULE_CONFIG", config.0.join("config.json"))
        .env_remove("MOLECULE_URL")
        .env_remove("MOLECULE_TOKEN")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("the molecule binary runs")
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn every_command_group_works_against_a_real_server() {
    let t = start().await;
    let url = t.server.url();
    let cfg = TempDir::default();
    macro_rules! run {
        ($($a:expr),* $(,)?) => { molecule(&url, &cfg, &[$($a),*]).await };
    }

    // Workspaces.
    let created = ok_json(&run!("ws", "create", "lead", "--role", "pm", "-o", "json",));
    let id = created["id"].as_str().unwrap().to_string();
    let list = run!("ws", "list");
    assert!(list.status.success());
    let table = text(&list);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("lead") && table.contains(&id), "{table}");
    let got = run!("ws", "get", &id, "-o", "yaml");
    assert!(text(&got).contains("name: lead"), "{}", text(&got));
    let all = ok_json(&run!("ws", "list", "-o", "json"));
    assert_eq!(all.as_array().unwrap().len(), 1);
    ok_json(&run!("ws", "update", &id, "--role", "boss", "-o", "json"));
    assert_eq!(
        ok_json(&run!("ws", "get", &id, "-o", "json"))["role"],
        "boss"
    );

    // Workspace-scoped groups with the workspace's token.
    let token = t
        .client
        .test_token(id.parse().unwrap())
        .await
        .unwrap()
        .auth_token;
    // `--token=…`: a token may start with `-` (base64url), which a
    // separate argument would read as a flag.
    let token_arg = format!("--token={token}");
    macro_rules! authed {
        ($($a:expr),* $(,)?) => { molecule(&url, &cfg, &[token_arg.as_str(), $($a),*]).await };
    }
    ok_json(&authed!(
        "secret",
        "set",
        &id,
        "API_KEY",
        "s3cret-value",
        "-o",
        "json",
    ));
    let secrets = authed!("secret", "list", &id, "-o", "json");
    assert!(
        !text(&secrets).contains("s3cret-value"),
        "values are never printed"
    );
    assert_eq!(ok_json(&secrets)[0]["key"], "API_KEY");
    let schedule = ok_json(&authed!(
        "schedule",
        "add",
        &id,
        "--cron",
        "0 9 * * *",
        "--prompt",
        "report",
        "--name",
        "daily",
        "-o",
        "json",
    ));
    let sid = schedule["id"].as_str().unwrap().to_string();
    let schedules = ok_json(&authed!("schedule", "list", &id, "-o", "json"));
    assert_eq!(schedules[0]["name"], "daily");
    ok_json(&authed!("schedule", "delete", &id, &sid, "-o", "json"));
    let activity = authed!("activity", &id);
    assert!(
        activity.status.success(),
        "{}",
        String::from_utf8_lossy(&activity.stderr)
    );
    assert!(authed!("delegations", &id).status.success());
    assert!(authed!("approvals", "list", &id).status.success());

    // Events, and any call through `api`.
    let events = ok_json(&run!("events", "--workspace", &id, "-o", "json"));
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event_type"] == "WORKSPACE_PROVISIONING"),
        "{events}"
    );
    assert_eq!(
        ok_json(&run!("api", "get", "health", "-o", "json"))["status"],
        "ok"
    );

    // Errors: the server's message on one line, exit 1; usage errors exit 2.
    let missing = run!("ws", "get", &uuid::Uuid::new_v4().to_string());
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("workspace not found") && err.contains("404"),
        "{err}"
    );
    assert_eq!(run!("ws", "get", "not-a-uuid").status.code(), Some(2));
    assert_eq!(run!("ws", "frobnicate").status.code(), Some(2));
    let unreachable = molecule("http://127.0.0.1:9", &cfg, &["ws", "list"]).await;
    assert_eq!(unreachable.status.code(), Some(1));

    // Delete asks first; without a terminal to ask on, nothing is deleted.
    let refused = run!("ws", "delete", &id);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert_eq!(
        ok_json(&run!("ws", "list", "-o", "json"))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(run!("ws", "delete", &id, "--yes").status.success());
    assert_eq!(
        ok_json(&run!("ws", "list", "-o", "json")),
        Value::Array(vec![])
    );
}

#[tokio::test]
async fn contexts_name_connections_and_keep_tokens_private() {
    let t = start().await;
    let cfg = TempDir::default();
    macro_rules! with_config {
        ($($a:expr),* $(,)?) => { run_with_config(&cfg, &[$($a),*]).await };
    }
    let url = t.server.url();
    assert!(
        with_config!("context", "set", "local", "--url", &url, "--token", "tok-1")
            .status
            .success()
    );
    assert!(
        with_config!("context", "set", "nowhere", "--url", "http://127.0.0.1:9")
            .status
            .success()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cfg.0.join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the file holds tokens");
    let list = with_config!("context", "list");
    let listed = text(&list);
    assert!(
        listed.contains("nowhere") && !listed.contains("tok-1"),
        "{listed}"
    );
    // The current context is the last set; --context picks another.
    assert_eq!(with_config!("ws", "list").status.code(), Some(1));
    assert!(
        with_config!("--context", "local", "ws", "list")
            .status
            .success()
    );
    assert!(with_config!("context", "use", "local").status.success());
    assert!(with_config!("ws", "list").status.success());
    assert_eq!(
        with_config!("context", "use", "missing").status.code(),
        Some(1)
    );
}

#[tokio::test]
async fn events_follow_streams_live() {
    use tokio::io::AsyncBufReadExt;
    let t = start().await;
    let cfg = TempDir::default();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_molecule"))
        .args(["--url", &t.server.url(), "events", "--follow", "-o", "json"])
        .env("MOLECULE_CONFIG", cfg.0.join("config.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Events made after the follower subscribed reach it; create until one
    // does (its subscription is not synchronised with this test).
    let mut seen = None;
    for attempt in 0..50 {
        t.create(&format!("live-{attempt}"), None).await;
        if let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await
        {
            seen = Some(line);
            break;
        }
    }
    let _ = child.kill().await;
    let line = seen.expect("an event line");
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["event"], "WORKSPACE_PROVISIONING");
}

#[tokio::test]
async fn doctor_reports_each_check_and_fails_on_a_failure() {
    let t = start().await;
    let cfg = TempDir::default();
    let out = molecule(&t.server.url(), &cfg, &["doctor", "-o", "json"]).await;
    let checks = ok_json(&out);
    let status_of = |name: &str| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .map(|c| c["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_of("platform").as_deref(), Some("PASS"), "{checks}");
    assert_eq!(status_of("database and tasks").as_deref(), Some("PASS"));
    assert_eq!(status_of("clock").as_deref(), Some("PASS"));
    assert!(status_of("docker").is_some());
    let down = molecule("http://127.0.0.1:9", &cfg, &["doctor"]).await;
    assert_eq!(down.status.code(), Some(1));
    let table = text(&down);
    assert!(
        table.contains("FAIL") && table.contains("molecule serve"),
        "{table}"
    );
}
