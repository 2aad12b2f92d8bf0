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
    ok_json(&authed!(
        "schedule",
        "update",
        &id,
        &sid,
        "--enabled",
        "false",
        "-o",
        "json"
    ));
    assert_eq!(
        ok_json(&authed!("schedule", "list", &id, "-o", "json"))[0]["enabled"],
        false
    );
    ok_json(&authed!("schedule", "delete", &id, &sid, "-o", "json"));
    let activity = authed!("activity", &id);
    assert!(
        activity.status.success(),
        "{}",
        String::from_utf8_lossy(&activity.stderr)
    );
    assert!(authed!("delegations", "list", &id).status.success());
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

#[tokio::test]
async fn content_agent_and_generated_commands() {
    let t = start().await;
    let url = t.server.url();
    let cfg = TempDir::default();
    macro_rules! run {
        ($($a:expr),* $(,)?) => { molecule(&url, &cfg, &[$($a),*]).await };
    }
    let lead = t.create("lead", None).await.to_string();
    let worker = t
        .create("worker", Some(lead.parse().unwrap()))
        .await
        .to_string();
    let token = t
        .client
        .test_token(lead.parse().unwrap())
        .await
        .unwrap()
        .auth_token;
    let token_arg = format!("--token={token}");
    // Workspace-scoped commands carry the workspace's token.
    macro_rules! authed {
        ($($a:expr),* $(,)?) => { molecule(&url, &cfg, &[token_arg.as_str(), $($a),*]).await };
    }

    // Agent: card, config, key/value memory, scoped memories, session search.
    ok_json(&authed!(
        "agent",
        "card",
        "set",
        &lead,
        r#"{"name":"lead","description":"plans"}"#,
        "-o",
        "json"
    ));
    assert_eq!(
        ok_json(&authed!("agent", "card", "get", &lead))["description"],
        "plans"
    );
    ok_json(&authed!(
        "agent",
        "config",
        "set",
        &lead,
        r#"{"model":"m1"}"#,
        "-o",
        "json"
    ));
    assert_eq!(
        ok_json(&authed!("agent", "config", "get", &lead, "-o", "json"))["model"],
        "m1"
    );
    ok_json(&authed!(
        "agent",
        "memory",
        "set",
        &lead,
        "plan",
        r#"{"step":2}"#,
        "--ttl",
        "600",
        "-o",
        "json"
    ));
    assert_eq!(
        ok_json(&authed!(
            "agent", "memory", "get", &lead, "plan", "-o", "json"
        ))["value"]["step"],
        2
    );
    assert!(text(&authed!("agent", "memory", "list", &lead)).contains("plan"));
    ok_json(&authed!(
        "agent", "memory", "delete", &lead, "plan", "-o", "json"
    ));
    let added = ok_json(&authed!(
        "agent",
        "memories",
        "add",
        &lead,
        "the launch is on friday",
        "--scope",
        "team",
        "-o",
        "json"
    ));
    let mid = added["id"].as_str().unwrap().to_string();
    let found = ok_json(&authed!(
        "agent", "memories", "list", &lead, "-q", "launch", "-o", "json"
    ));
    assert_eq!(found[0]["content"], "the launch is on friday", "{found}");
    let hits = ok_json(&authed!(
        "agent", "session", "search", &lead, "friday", "-o", "json"
    ));
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .any(|h| h["kind"] == "memory"),
        "{hits}"
    );
    ok_json(&authed!(
        "agent", "memories", "delete", &lead, &mid, "-o", "json"
    ));

    // Secrets: global ones, and values only when asked.
    ok_json(&run!(
        "secret",
        "set-global",
        "SHARED_KEY",
        "g-value",
        "-o",
        "json"
    ));
    let globals = run!("secret", "list-global");
    assert!(text(&globals).contains("SHARED_KEY") && !text(&globals).contains("g-value"));
    assert_eq!(
        ok_json(&authed!("secret", "values", &lead, "-o", "json"))["SHARED_KEY"],
        "g-value"
    );
    ok_json(&run!("secret", "delete-global", "SHARED_KEY", "-o", "json"));

    // Registry and delegation.
    let access = ok_json(&run!(
        "registry",
        "check-access",
        &worker,
        &lead,
        "-o",
        "json"
    ));
    assert_eq!(access["allowed"], true);
    assert_eq!(
        ok_json(&authed!("delegation", "list", &lead, "-o", "json")),
        Value::Array(vec![])
    );

    // The agent slot, children, and token rotation.
    let assigned = ok_json(&authed!("agent", "assign", &lead, "model-a", "-o", "json"));
    assert_eq!(assigned["model"], "model-a", "{assigned}");
    ok_json(&authed!("agent", "replace", &lead, "model-b", "-o", "json"));
    ok_json(&authed!("agent", "remove", &lead, "-o", "json"));
    let again = authed!("agent", "remove", &lead);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no active agent"));
    let rotated = ok_json(&run!("ws", "rotate-token", &worker, "-o", "json"));
    assert!(rotated["auth_token"].is_string(), "{rotated}");
    let collapsed = ok_json(&authed!("ws", "collapse", &lead, "-o", "json"));
    assert_eq!(collapsed["removed"][0], "worker", "{collapsed}");

    // Templates, org, bundles, plugins, traces.
    assert!(run!("templates", "list").status.success());
    assert!(run!("org", "templates").status.success());
    let org = cfg.0.join("org.yaml");
    std::fs::write(
        &org,
        "name: tiny\nworkspaces:\n  - name: solo\n    role: does it all\n",
    )
    .unwrap();
    let imported = run!(
        "org",
        "import",
        "--file",
        org.to_str().unwrap(),
        "--no-wait",
        "-o",
        "json"
    );
    assert_eq!(
        ok_json(&imported)["count"],
        1,
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(String::from_utf8_lossy(&imported.stderr).contains("importing the org"));
    let bundle = cfg.0.join("bundle.json");
    let exported = run!(
        "bundle",
        "export",
        &lead,
        "--file",
        bundle.to_str().unwrap()
    );
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let back = ok_json(&run!(
        "bundle",
        "import",
        bundle.to_str().unwrap(),
        "--no-wait",
        "-o",
        "json"
    ));
    assert_eq!(back["name"], "lead", "{back}");
    assert_eq!(
        ok_json(&run!("plugin", "sources", "-o", "json"))["schemes"][0],
        "github"
    );
    assert!(run!("plugins", "registry").status.success());
    assert_eq!(
        ok_json(&authed!("traces", &lead, "-o", "json")),
        Value::Array(vec![])
    );

    // Without a runtime backend there are no logs: the server's refusal.
    let logs = authed!("logs", &lead);
    assert_eq!(logs.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&logs.stderr).contains("503"),
        "{}",
        String::from_utf8_lossy(&logs.stderr)
    );

    // Channels: connect, list (masked), send, remove.
    let added = ok_json(&authed!(
        "channel",
        "add",
        &lead,
        "telegram",
        "--set",
        "bot_token=123:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "--set",
        "chat_id=42",
        "--set",
        "mode=webhook",
        "--allow",
        "7",
        "-o",
        "json"
    ));
    let cid = added["id"].as_str().unwrap().to_string();
    let listed = authed!("channel", "list", &lead);
    assert!(text(&listed).contains(&cid), "{}", text(&listed));
    assert!(!text(&listed).contains("AAAAAAAAAAAA"), "tokens are masked");
    assert!(text(&run!("channel", "adapters")).contains("slack"));
    let bad = authed!(
        "channel",
        "add",
        &lead,
        "telegram",
        "--set",
        "bot_token=nope"
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid config"));
    ok_json(&authed!(
        "channel",
        "update",
        &lead,
        &cid,
        "--enabled",
        "false",
        "-o",
        "json"
    ));
    ok_json(&authed!("channel", "remove", &lead, &cid, "-o", "json"));

    // Completions and the man page come from the command definitions.
    let bash = run_with_config(&cfg, &["completions", "bash"]).await;
    assert!(
        text(&bash).contains("dashboard") && text(&bash).contains("complete"),
        "{}",
        text(&bash)
    );
    let man = run_with_config(&cfg, &["man"]).await;
    assert!(
        text(&man).starts_with(".ie") || text(&man).contains(".TH molecule"),
        "{}",
        text(&man)
    );
    // The dashboard needs a terminal and says so.
    let no_tty = run!("dashboard");
    assert_eq!(no_tty.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_tty.stderr).contains("needs a terminal"));
}

/// Against real agents (local processes): chat streams the echo back,
/// logs show and follow the agent's output, an org import waits with
/// progress until its workspace is online.
#[tokio::test]
async fn chat_logs_and_import_progress_against_real_agents() {
    use crate::lifecycle::{Backend, start_backend, wait_status};
    use molecule_types::WorkspaceStatus;
    use tokio::io::AsyncReadExt;
    let t = start_backend(Backend::Local, |_| {})
        .await
        .expect("local backend");
    let url = t.server.url();
    let cfg = TempDir::default();
    let id = t.create("talker", None).await;
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    let sid = id.to_string();

    // The proxy answers 503 until the provisioner recorded the address.
    let said = crate::eventually(Duration::from_secs(10), || async {
        let out = molecule(&url, &cfg, &["chat", &sid, "-m", "hello there"]).await;
        out.status.success().then(|| text(&out))
    })
    .await;
    assert_eq!(said.expect("a chat answer").trim(), "echo: hello there");
    let json = ok_json(&molecule(&url, &cfg, &["chat", &sid, "-m", "again", "-o", "json"]).await);
    assert_eq!(json["state"], "completed");
    assert_eq!(json["answer"], "echo: again");

    let token = t.client.test_token(id).await.unwrap().auth_token;
    let token_arg = format!("--token={token}");
    let logs = molecule(&url, &cfg, &[&token_arg, "logs", &sid, "--tail", "50"]).await;
    assert!(
        text(&logs).contains("registered"),
        "{}{}",
        text(&logs),
        String::from_utf8_lossy(&logs.stderr)
    );

    // Follow: the output so far, then more until the agent stops.
    let mut follower = tokio::process::Command::new(env!("CARGO_BIN_EXE_molecule"))
        .args(["--url", &url, &token_arg, "logs", &sid, "--follow"])
        .env("MOLECULE_CONFIG", cfg.0.join("config.json"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = follower.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("registered") {
        let n = tokio::time::timeout(Duration::from_secs(30), stdout.read(&mut buf))
            .await
            .expect("logs within 30 s")
            .unwrap();
        assert!(n > 0, "the follower ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let paused = molecule(&url, &cfg, &[&token_arg, "ws", "pause", &sid]).await;
    assert!(
        paused.status.success(),
        "{}",
        String::from_utf8_lossy(&paused.stderr)
    );
    let mut rest = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_to_string(&mut rest))
        .await
        .expect("the follow ends when the agent stops")
        .unwrap();
    assert!(follower.wait().await.unwrap().success());

    // An org import waits, with progress, until its workspace is online.
    let org = cfg.0.join("org.yaml");
    std::fs::write(&org, "name: pair\nworkspaces:\n  - name: first\n").unwrap();
    let out = molecule(
        &url,
        &cfg,
        &[
            "org",
            "import",
            "--file",
            org.to_str().unwrap(),
            "--timeout",
            "120",
        ],
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1/1 online"), "{err}");
}
