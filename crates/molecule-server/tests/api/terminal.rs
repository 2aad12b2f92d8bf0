//! The terminal (api-contract §5.18, issue 15): a shell in a running
//! workspace over a WebSocket, on both runtime backends — commands run,
//! resize reaches the TTY, and closing either side leaves no process of the
//! shell's session behind. Refusals keep their HTTP statuses.

use molecule_client::{ClientError, TerminalOutput, TerminalSession};
use molecule_types::WorkspaceStatus;
use std::time::Duration;
use uuid::Uuid;

use crate::lifecycle::{Backend, start_backend, wait_status};
use crate::{eventually, start};

/// Reads output until it holds `needle`; returns everything read.
async fn read_until(term: &mut TerminalSession, needle: &str) -> String {
    let mut seen = String::new();
    let read = async {
        while !seen.contains(needle) {
            match term.next().await.expect("terminal readable") {
                TerminalOutput::Bytes(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                TerminalOutput::Closed(reason) => {
                    panic!("closed ({reason:?}) before {needle:?}: {seen}")
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .is_err()
    {
        panic!("no {needle:?} in the terminal's output: {seen}");
    }
    seen
}

/// The command lines of the processes the workspace's runtime can see.
fn processes(backend: Backend, id: Uuid) -> String {
    let out = match backend {
        Backend::Docker => std::process::Command::new("docker")
            .args([
                "exec",
                &molecule_types::container_name(id),
                "ps",
                "-o",
                "args",
            ])
            .output(),
        Backend::Local => std::process::Command::new("ps")
            .args(["-eo", "args"])
            .output(),
    }
    .expect("ps runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn a_terminal_runs_commands_resizes_and_leaves_nothing_behind(backend: Backend) {
    let Some(t) = start_backend(backend, |_| {}).await else {
        return;
    };
    let id = t.create("shell", None).await;
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    let c = t.minted(id).await;
    let mut term = c.terminal(id, 80, 24).await.unwrap();
    // The arithmetic shows the shell ran it (the echo of the input has not).
    term.send("echo hi-$((40+2))\n").await.unwrap();
    read_until(&mut term, "hi-42").await;
    term.resize(101, 33).await.unwrap();
    term.send("stty size\n").await.unwrap();
    read_until(&mut term, "33 101").await;

    // A background job and a foreground one when the client goes away.
    // Distinct per backend: both backends' tests may run at once, and
    // container processes are visible on the host.
    let (bg, fg) = match backend {
        Backend::Local => ("sleep 4242", "sleep 4243"),
        Backend::Docker => ("sleep 5252", "sleep 5253"),
    };
    term.send(format!("{bg} &\n{fg}\n")).await.unwrap();
    eventually(Duration::from_secs(20), || async {
        let ps = processes(backend, id);
        (ps.contains(bg) && ps.contains(fg)).then_some(())
    })
    .await
    .expect("both jobs run");
    term.close().await.unwrap();
    let gone = eventually(Duration::from_secs(20), || async {
        let ps = processes(backend, id);
        (!ps.contains(bg) && !ps.contains(fg)).then_some(())
    })
    .await;
    assert!(gone.is_some(), "left behind: {}", processes(backend, id));

    // The shell exiting closes the socket, with the reason.
    let mut term = c.terminal(id, 80, 24).await.unwrap();
    term.send("exit\n").await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let TerminalOutput::Closed(reason) = term.next().await.unwrap() {
                return reason;
            }
        }
    })
    .await
    .expect("the socket closes");
    assert_eq!(ended.as_deref(), Some("shell exited"));

    // A paused workspace has no runtime to open a terminal in.
    let (s, body) = crate::call(
        &c,
        molecule_client::Method::POST,
        &format!("/workspaces/{id}/pause"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Paused,
        Duration::from_secs(30),
    )
    .await;
    match c.terminal(id, 80, 24).await {
        Err(ClientError::Http {
            status: 404,
            message,
            ..
        }) => {
            assert_eq!(message, "container not running")
        }
        other => panic!("a paused workspace's terminal: {other:?}"),
    }
}

/// Without a runtime backend the terminal is 503; without a credential, or
/// with another workspace's, 401; bad sizes 400.
#[tokio::test]
async fn terminal_refusals_keep_their_statuses() {
    let t = start().await;
    let id = t.create("no-backend", None).await;
    let status = |r: Result<TerminalSession, ClientError>| match r {
        Err(ClientError::Http { status, .. }) => status,
        other => panic!("expected a refusal: {other:?}"),
    };
    assert_eq!(status(t.client.terminal(id, 80, 24).await), 401);
    let c = t.minted(id).await;
    assert_eq!(status(c.terminal(id, 80, 24).await), 503);
    assert_eq!(status(c.terminal(id, 0, 24).await), 400);
    let other = t.create("other", None).await;
    assert_eq!(status(c.terminal(other, 80, 24).await), 401);
    // A page on another origin may not open one (the platform's CORS rule).
    let r = c
        .raw(
            molecule_client::Method::GET,
            format!("/workspaces/{id}/terminal"),
        )
        .header("origin", "http://evil.example")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 403);
}

/// `GET /workspaces/:id/logs`: the agent's output, and with `follow` a
/// stream that ends when the agent stops.
async fn logs_show_and_follow_the_agent_output(backend: Backend) {
    let Some(t) = start_backend(backend, |_| {}).await else {
        return;
    };
    let id = t.create("talkative", None).await;
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    let c = t.minted(id).await;
    let path = format!("/workspaces/{id}/logs");
    // The agent logs its registration right after it starts.
    let tail = eventually(Duration::from_secs(30), || async {
        let r = c
            .request(
                molecule_client::Method::GET,
                &format!("{path}?tail=20"),
                None,
            )
            .await
            .ok()?;
        (r.status == 200 && r.text().contains("registered")).then(|| r.text())
    })
    .await
    .expect("the registration in the logs");
    assert!(tail.lines().count() <= 20, "{tail}");
    let mut follow = c
        .raw(molecule_client::Method::GET, format!("{path}?follow=true"))
        .send_streaming()
        .await
        .unwrap();
    assert_eq!(follow.status, 200);
    assert_eq!(
        follow.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let mut seen = String::new();
    while !seen.contains("registered") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), follow.chunk())
            .await
            .expect("output within 30 s")
            .unwrap()
            .expect("the stream stays open while the agent runs");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let paused = c
        .request(
            molecule_client::Method::POST,
            &format!("/workspaces/{id}/pause"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(paused.status, 200, "{}", paused.text());
    // The stream ends once the agent stopped (whatever it printed last).
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        while follow.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the follow never ended");
    let r = c
        .request(
            molecule_client::Method::GET,
            &format!("{path}?tail=10001"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
}
backend_tests!(
    a_terminal_runs_commands_resizes_and_leaves_nothing_behind,
    logs_show_and_follow_the_agent_output,
);

#[tokio::test]
async fn logs_refusals() {
    let t = start().await;
    let id = t.create("no-backend", None).await;
    let c = t.minted(id).await;
    let get = |c: &molecule_client::Client, path: String| {
        let c = c.clone();
        async move {
            c.request(molecule_client::Method::GET, &path, None)
                .await
                .unwrap()
                .status
        }
    };
    assert_eq!(get(&t.client, format!("/workspaces/{id}/logs")).await, 401);
    assert_eq!(get(&c, format!("/workspaces/{id}/logs")).await, 503);
    assert_eq!(get(&c, format!("/workspaces/{id}/logs?tail=x")).await, 400);
    assert_eq!(get(&c, "/workspaces/not-a-uuid/logs".into()).await, 404);
}
