//! The A2A proxy in front of provisioned workspaces (local processes and
//! Docker containers): a parent/child pair talks and streams, an outsider is
//! refused, and a killed runtime answers "restarting" with exactly one
//! restart.

use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::a2a::{reply_text, send_body};
use crate::eventually;
use crate::lifecycle::{Backend, kill_runtime, start_backend, wait_status};
use molecule_types::WorkspaceStatus;

/// Wait until a provisioned workspace answers through the proxy. Between
/// the agent's registration and the provisioner recording the published
/// address the proxy answers 503 `workspace has no URL` (retryable).
async fn ready(c: &molecule_client::Client, id: Uuid) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.a2a(id, &send_body("ping")).await.unwrap();
        if r.status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never answered: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two provisioned agents in a parent/child pair exchange messages and a
/// stream through the platform; a third, unrelated one is refused.
async fn parent_and_child_talk_an_outsider_is_refused(backend: Backend) {
    let Some(t) = start_backend(backend, |_| {}).await else {
        return;
    };
    let parent = t.create("parent", None).await;
    let child = t.create("child", Some(parent)).await;
    let other_root = t.create("other", None).await;
    let outsider = t.create("outsider", Some(other_root)).await;
    for id in [parent, child, other_root, outsider] {
        wait_status(
            &t.client,
            id,
            WorkspaceStatus::Online,
            Duration::from_secs(60),
        )
        .await;
    }
    for id in [parent, child, other_root, outsider] {
        ready(&t.client, id).await;
    }
    let child_token = t.client.test_token(child).await.unwrap().auth_token;
    let outsider_token = t.client.test_token(outsider).await.unwrap().auth_token;

    let r = t
        .as_workspace(child, &child_token)
        .a2a(parent, &send_body("hello parent"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(reply_text(&r.json().unwrap()), "echo: hello parent");

    let stream = json!({
        "jsonrpc": "2.0", "id": 2, "method": "message/stream",
        "params": { "message": { "role": "user", "messageId": "s-2",
            "parts": [{ "kind": "text", "text": "streamed" }] } }
    });
    let r = t
        .as_workspace(child, &child_token)
        .a2a(parent, &stream)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(r.text().contains("streamed"), "{}", r.text());

    let r = t
        .as_workspace(outsider, &outsider_token)
        .a2a(parent, &send_body("let me in"))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    // Containers outlive the server by design: remove them.
    for root in [parent, other_root] {
        t.client.delete_workspace(root, true).await.unwrap();
    }
}

/// A killed runtime: the next call answers 503 restarting, and exactly one
/// restart brings the workspace back.
async fn a_killed_agent_gives_restarting_and_one_restart(backend: Backend) {
    let Some(t) = start_backend(backend, |c| {
        // Only the proxy's reactive check may notice the death.
        c.health_sweep_every = Duration::from_secs(3600);
    })
    .await
    else {
        return;
    };
    let id = t.create("victim", None).await;
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    ready(&t.client, id).await;
    kill_runtime(backend, id);
    // A process or container that is still dying may look running to the
    // check for a moment (that call answers busy or 502); once it is gone
    // the answer is "restarting".
    let r = eventually(Duration::from_secs(10), || async {
        let r = t.client.a2a(id, &send_body("are you there")).await.ok()?;
        let body = r.json().ok()?;
        (body["restarting"] == true).then_some(r)
    })
    .await
    .expect("the dead agent is noticed and a restart triggered");
    assert_eq!(r.status, 503, "{}", r.text());
    // Calls while it restarts do not start more restarts (counted below).
    // A local restart can finish within these calls: a call that reaches
    // the new process before it serves is told "restarting" (503), one
    // after it is answered (200); never a 502.
    for _ in 0..3 {
        let r = t.client.a2a(id, &send_body("again")).await.unwrap();
        assert!(matches!(r.status, 200 | 503), "{} {}", r.status, r.text());
    }
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    ready(&t.client, id).await;
    let restarts: Vec<_> = t
        .client
        .events(Some(id))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.event_type == "WORKSPACE_RESTART_DECISION" && e.payload["decision"] == "restart"
        })
        .collect();
    assert_eq!(restarts.len(), 1, "{restarts:?}");
    t.client.delete_workspace(id, true).await.unwrap();
}

macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod local {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Local).await } )*
        }
        mod docker {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Docker).await } )*
        }
    };
}

backend_tests!(
    parent_and_child_talk_an_outsider_is_refused,
    a_killed_agent_gives_restarting_and_one_restart
);
