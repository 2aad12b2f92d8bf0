//! The built `molecule-agent` binary as a process: the crash-loop fault
//! hook, environment parsing end to end, SIGTERM, and a clean exit when the
//! platform says the workspace was removed.

use std::process::Stdio;

use axum::http::StatusCode;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::support::{DEADLINE, FakePlatform, TempDir, client_of, eventually};

/// The binary with a clean environment: loopback, an ephemeral port and
/// `config_dir`, plus `vars`.
fn agent_command(config_dir: &TempDir, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_molecule-agent"));
    command
        .env_clear()
        .env("AGENT_HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("HOSTNAME", "localhost")
        .env("MOLECULE_CONFIG_DIR", config_dir.path())
        .env("RUST_LOG", "info")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Waits for the process to exit; returns its code and its log.
async fn wait(mut child: Child) -> (Option<i32>, String) {
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("the agent exits in time")
        .expect("wait works");
    let mut log = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut log).await;
    }
    (status.code(), log)
}

#[tokio::test]
async fn the_fault_hook_exits_with_the_requested_code() {
    for (value, code) in [("7", 7), ("0", 0), ("not-a-number", 2)] {
        let dir = TempDir::new();
        let child = agent_command(&dir, &[("MOLECULE_AGENT_EXIT_AT_START", value)])
            .spawn()
            .expect("spawn agent");
        let (exit, log) = wait(child).await;
        assert_eq!(exit, Some(code), "{value}: {log}");
        assert!(
            !log.contains("serving A2A"),
            "it exits before serving: {log}"
        );
    }
}

#[tokio::test]
async fn a_bad_configuration_exits_with_1_and_says_why() {
    let dir = TempDir::new();
    let child = agent_command(&dir, &[("PLATFORM_URL", "http://127.0.0.1:9")])
        .spawn()
        .expect("spawn agent");
    let (exit, log) = wait(child).await;
    assert_eq!(exit, Some(1), "{log}");
    assert!(log.contains("WORKSPACE_ID"), "{log}");
}

#[tokio::test]
async fn the_binary_registers_serves_and_stops_on_sigterm() {
    let platform = FakePlatform::start(
        Box::new(|_, _| (StatusCode::OK, json!({"status": "registered"}))),
        StatusCode::OK,
    )
    .await;
    let dir = TempDir::new();
    let child = agent_command(
        &dir,
        &[
            ("PLATFORM_URL", platform.url.as_str()),
            ("WORKSPACE_ID", "ws-bin"),
            ("HEARTBEAT_INTERVAL_SECONDS", "0.1"),
            ("AGENT_NAME", "Binary agent"),
        ],
    )
    .spawn()
    .expect("spawn agent");

    eventually("the binary to register and beat", || {
        !platform.heartbeats().is_empty()
    })
    .await;
    let register = platform.registers()[0].clone();
    assert_eq!(register.body["id"], "ws-bin");
    assert_eq!(register.body["agent_card"]["name"], "Binary agent");
    let url = register.body["url"].as_str().unwrap_or_default().to_owned();
    let port = url
        .strip_prefix("http://localhost:")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("advertised URL uses HOSTNAME and the bound port: {url}"));
    assert_ne!(port, 0);

    let client = client_of(format!("http://127.0.0.1:{port}"));
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "message/send",
        "params": {"message": {"role": "user", "messageId": "m-1", "parts": [{"kind": "text", "text": "hi"}]}}});
    let answer = client
        .request(molecule_client::Method::POST, "/", Some(&body))
        .await
        .expect("the binary serves A2A")
        .json()
        .expect("JSON");
    assert_eq!(
        answer["result"]["artifacts"][0]["parts"][0]["text"],
        "echo: hi"
    );

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let (exit, log) = wait(child).await;
    assert_eq!(exit, Some(0), "SIGTERM is a clean stop: {log}");
    assert!(log.contains("SIGTERM"), "{log}");
}

#[tokio::test]
async fn the_binary_exits_0_when_the_workspace_was_removed() {
    let platform = FakePlatform::start(
        Box::new(|_, _| (StatusCode::GONE, json!({"error": "workspace removed"}))),
        StatusCode::OK,
    )
    .await;
    let dir = TempDir::new();
    let child = agent_command(
        &dir,
        &[
            ("PLATFORM_URL", platform.url.as_str()),
            ("WORKSPACE_ID", "ws-removed"),
        ],
    )
    .spawn()
    .expect("spawn agent");
    let (exit, log) = wait(child).await;
    assert_eq!(exit, Some(0), "{log}");
    assert!(log.contains("removed"), "{log}");
    assert_eq!(platform.registers().len(), 1);
}

#[tokio::test]
async fn help_and_version_print_and_exit_and_other_arguments_are_refused() {
    let dir = TempDir::new();
    for (arg, code, needle) in [
        ("--help", 0, "Usage: molecule-agent"),
        ("-h", 0, "PLATFORM_URL"),
        ("--version", 0, "molecule-agent "),
        ("--port=9000", 2, "configured by environment"),
    ] {
        let output = tokio::time::timeout(
            DEADLINE,
            agent_command(&dir, &[])
                .arg(arg)
                .stdout(Stdio::piped())
                .output(),
        )
        .await
        .expect("the agent exits in time")
        .expect("run agent");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(code), "{arg}: {text}");
        assert!(text.contains(needle), "{arg}: {text}");
        assert!(
            !text.contains("serving A2A"),
            "{arg} must not start the agent: {text}"
        );
    }
}

/// Runs the binary with `args` to completion: (exit code, stdout + stderr).
async fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let dir = TempDir::new();
    let output = tokio::time::timeout(
        DEADLINE,
        agent_command(&dir, &[])
            .args(args)
            .stdout(Stdio::piped())
            .output(),
    )
    .await
    .expect("the agent exits in time")
    .expect("run agent");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[tokio::test]
async fn fs_rm_refuses_paths_outside_configs_and_touches_nothing() {
    let (code, help) = run_to_exit(&["--help"]).await;
    assert_eq!(code, Some(0));
    assert!(help.contains("fs-rm <path>"), "{help}");

    let (code, text) = run_to_exit(&["fs-rm"]).await;
    assert_eq!(
        code,
        Some(2),
        "fs-rm without paths is a bad command line: {text}"
    );

    // The real /configs of a container; on this host it need not exist.
    let outside = TempDir::new();
    let victim = outside.path().join("victim.txt");
    std::fs::write(&victim, "keep").expect("write victim");
    let escapes = [
        format!("/configs/..{}", victim.display()),
        victim.display().to_string(),
        "configs/relative".to_string(),
    ];
    for arg in &escapes {
        let (code, text) = run_to_exit(&["fs-rm", arg]).await;
        assert_eq!(code, Some(1), "{arg}: {text}");
        assert!(
            text.contains("refused") || text.contains("absolute"),
            "{arg}: {text}"
        );
    }
    assert!(victim.exists(), "a refused path was removed");

    let missing = format!("/configs/molecule-test-{}/x", uuid::Uuid::new_v4());
    let (code, text) = run_to_exit(&["fs-rm", &missing]).await;
    assert_eq!(code, Some(0), "a missing path is success: {text}");
}
