//! Registration and heartbeats against a fake platform that records calls:
//! retry until the platform answers, the issued token (used and persisted),
//! a stale token, removal, and what the heartbeats report.

use std::time::Duration;

use axum::http::StatusCode;
use molecule_agent::config::{CommandConfig, ExecutorConfig};
use serde_json::json;

use crate::support::{
    Call, DEADLINE, FakePlatform, TempDir, call, echo, eventually, message, start,
};

fn ok() -> (StatusCode, serde_json::Value) {
    (StatusCode::OK, json!({"status": "registered"}))
}

/// `fail…` fails with stderr, `slow…` takes 30 s, anything else succeeds.
fn scripted_command() -> ExecutorConfig {
    let script = r#"input=$(cat); case "$input" in fail*) echo "boom: $input" >&2; exit 1;; slow*) sleep 30;; esac; printf 'ok %s' "$input""#;
    ExecutorConfig::Command(CommandConfig {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        timeout: Duration::from_secs(60),
    })
}

fn last_beat_matches(platform: &FakePlatform, check: impl Fn(&Call) -> bool) -> bool {
    platform.heartbeats().last().is_some_and(check)
}

#[tokio::test]
async fn registers_after_retries_then_heartbeats_with_the_issued_token() {
    let platform = FakePlatform::start(
        Box::new(|attempt, _| match attempt {
            1 | 2 => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "starting"}),
            ),
            _ => (
                StatusCode::OK,
                json!({"status": "registered", "auth_token": "issued-1"}),
            ),
        }),
        StatusCode::OK,
    )
    .await;
    let dir = TempDir::new();
    let mut config = platform.config("ws-test", dir.path());
    config.token = Some("env-token".into());
    let agent = start(scripted_command(), Some(config)).await;

    eventually("registration after two failures", || {
        platform.registers().len() == 3
    })
    .await;
    let registers = platform.registers();
    for register in &registers {
        assert_eq!(register.bearer.as_deref(), Some("env-token"));
        assert_eq!(register.body["id"], "ws-test");
        assert_eq!(register.body["url"], agent.url());
        assert_eq!(&register.body["agent_card"], agent.card());
    }
    // The platform records the third attempt before the agent has read the
    // answer and written the token, so wait for the file rather than race it.
    eventually("the issued token is persisted", || {
        std::fs::read_to_string(dir.path().join(".auth_token"))
            .ok()
            .as_deref()
            == Some("issued-1")
    })
    .await;

    eventually("an idle heartbeat", || !platform.heartbeats().is_empty()).await;
    let beat = &platform.heartbeats()[0];
    assert_eq!(
        beat.bearer.as_deref(),
        Some("issued-1"),
        "the issued token replaces the env one"
    );
    assert_eq!(beat.body["workspace_id"], "ws-test");
    assert_eq!(beat.body["error_rate"], 0.0);
    assert_eq!(beat.body["sample_error"], "");
    assert_eq!(beat.body["active_tasks"], 0);
    assert_eq!(beat.body["current_task"], "");
    assert!(beat.body["uptime_seconds"].as_i64().is_some_and(|s| s >= 0));

    let failed = call(&agent, "message/send", message("fail now")).await;
    assert_eq!(failed["status"]["state"], "failed");
    let done = call(&agent, "message/send", message("hello")).await;
    assert_eq!(done["status"]["state"], "completed");
    eventually("error rate 0.5 with the sample error", || {
        last_beat_matches(&platform, |b| {
            b.body["error_rate"] == 0.5
                && b.body["sample_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("boom: fail now"))
        })
    })
    .await;

    let mut params = message("slow job\nwith details");
    params["configuration"] = json!({"blocking": false});
    let slow = call(&agent, "message/send", params).await;
    eventually("the running task in a heartbeat", || {
        last_beat_matches(&platform, |b| {
            b.body["active_tasks"] == 1 && b.body["current_task"] == "slow job"
        })
    })
    .await;
    call(&agent, "tasks/cancel", json!({"id": slow["id"]})).await;
    eventually("idle again after the cancel", || {
        last_beat_matches(&platform, |b| {
            b.body["active_tasks"] == 0 && b.body["current_task"] == ""
        })
    })
    .await;
    assert!(
        platform
            .heartbeats()
            .iter()
            .all(|b| b.bearer.as_deref() == Some("issued-1")),
        "every heartbeat presents the issued token"
    );
    agent.shutdown().await.expect("clean shutdown");

    // Stopped means stopped: no more heartbeats.
    let count = platform.heartbeats().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(platform.heartbeats().len(), count);
}

#[tokio::test]
async fn a_refused_env_token_falls_back_to_the_persisted_one() {
    let platform = FakePlatform::start(
        Box::new(|_, bearer| match bearer {
            Some("saved-token") => ok(),
            _ => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid workspace auth token"}),
            ),
        }),
        StatusCode::OK,
    )
    .await;
    let dir = TempDir::new();
    std::fs::write(dir.path().join(".auth_token"), "saved-token\n").expect("write token");
    let mut config = platform.config("ws-2", dir.path());
    config.token = Some("stale-token".into());
    let agent = start(echo(0), Some(config)).await;

    eventually("a heartbeat", || !platform.heartbeats().is_empty()).await;
    let bearers: Vec<Option<String>> = platform.registers().into_iter().map(|c| c.bearer).collect();
    assert_eq!(
        bearers,
        [
            Some("stale-token".to_owned()),
            Some("saved-token".to_owned())
        ]
    );
    assert_eq!(
        platform.heartbeats()[0].bearer.as_deref(),
        Some("saved-token")
    );
    agent.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn registration_without_any_token_sends_no_bearer() {
    let platform = FakePlatform::start(Box::new(|_, _| ok()), StatusCode::OK).await;
    let dir = TempDir::new();
    let agent = start(echo(0), Some(platform.config("ws-3", dir.path()))).await;
    eventually("a heartbeat", || !platform.heartbeats().is_empty()).await;
    assert_eq!(platform.registers()[0].bearer, None);
    assert_eq!(platform.heartbeats()[0].bearer, None);
    agent.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_410_at_registration_or_heartbeat_means_removed() {
    let gone = || (StatusCode::GONE, json!({"error": "workspace removed"}));
    let platform = FakePlatform::start(Box::new(move |_, _| gone()), StatusCode::OK).await;
    let dir = TempDir::new();
    let mut agent = start(echo(0), Some(platform.config("ws-gone", dir.path()))).await;
    tokio::time::timeout(DEADLINE, agent.workspace_removed())
        .await
        .expect("removal is reported");
    assert_eq!(platform.registers().len(), 1, "a 410 is not retried");
    agent.shutdown().await.expect("clean shutdown");

    let platform = FakePlatform::start(Box::new(|_, _| ok()), StatusCode::GONE).await;
    let mut agent = start(echo(0), Some(platform.config("ws-gone-later", dir.path()))).await;
    tokio::time::timeout(DEADLINE, agent.workspace_removed())
        .await
        .expect("removal on heartbeat is reported");
    assert_eq!(platform.heartbeats().len(), 1);
    agent.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn heartbeat_failures_do_not_stop_the_beat() {
    let platform =
        FakePlatform::start(Box::new(|_, _| ok()), StatusCode::INTERNAL_SERVER_ERROR).await;
    let dir = TempDir::new();
    let agent = start(echo(0), Some(platform.config("ws-flaky", dir.path()))).await;
    eventually("heartbeats keep coming", || {
        platform.heartbeats().len() >= 3
    })
    .await;
    // The agent still serves while the platform is unhappy.
    let task = call(&agent, "message/send", message("still here")).await;
    assert_eq!(task["status"]["state"], "completed");
    agent.shutdown().await.expect("clean shutdown");
}
