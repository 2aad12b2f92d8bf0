//! `POST /webhooks/github[/:id]`: signed deliveries reach the workspace's
//! agent as `message/send` from `webhook:github`; forged, malformed,
//! unaddressed and replayed ones are refused and reach nothing.

use molecule_client::{Client, Method, RawResponse};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

use crate::a2a::{spawn_upstream, workspace_at};
use crate::{start, start_with};
use molecule_server::app::webhooks::hmac_sha256_hex;

const SECRET: &str = "gh-secret-for-tests";

fn comment(workspace: Option<&str>) -> Value {
    let mut p = json!({
        "action": "created",
        "repository": {"full_name": "acme/rocket"},
        "sender": {"login": "ana"},
        "issue": {"number": 42, "title": "Launch checklist"},
        "comment": {"body": "@bot please summarise", "html_url": "https://github.com/acme/rocket/issues/42#c1"},
    });
    if let Some(w) = workspace {
        p["workspace_id"] = json!(w);
    }
    p
}

async fn deliver(
    c: &Client,
    path: &str,
    event: &str,
    delivery: Option<&str>,
    body: &[u8],
    signature: Option<String>,
) -> RawResponse {
    let mut r = c
        .raw(Method::POST, path)
        .header("content-type", "application/json")
        .header("x-github-event", event);
    if let Some(d) = delivery {
        r = r.header("x-github-delivery", d);
    }
    if let Some(s) = signature {
        r = r.header("x-hub-signature-256", s);
    }
    r.body(body.to_vec()).send().await.unwrap()
}

fn sign(body: &[u8]) -> Option<String> {
    Some(format!(
        "sha256={}",
        hmac_sha256_hex(SECRET.as_bytes(), body)
    ))
}

#[tokio::test]
async fn signed_deliveries_reach_the_agent_once_and_nothing_else_does() {
    let t = start_with(|c| c.github_webhook_secret = Some(SECRET.into())).await;
    let (url, up) = spawn_upstream(|_| {
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1, "result": {"kind": "message", "role": "agent",
            "messageId": "m", "parts": [{"kind": "text", "text": "on it"}]}}),
        )
    })
    .await;
    let (ws, _) = workspace_at(&t, "triage", None, &url).await;
    let path = format!("/webhooks/github/{ws}");
    let body = serde_json::to_vec(&comment(None)).unwrap();

    // A good delivery: the agent's answer comes back; the agent got the
    // summary, the metadata, and the webhook caller.
    let r = deliver(
        &t.client,
        &path,
        "issue_comment",
        Some("d-1"),
        &body,
        sign(&body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().unwrap()["result"]["parts"][0]["text"], "on it");
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    let (headers, sent) = up.last.lock().unwrap().clone().unwrap();
    let sent: Value = serde_json::from_slice(&sent).unwrap();
    let message = &sent["params"]["message"];
    assert!(
        message["parts"][0]["text"].as_str().unwrap().starts_with(
            "GitHub: ana commented on acme/rocket#42 (Launch checklist): @bot please summarise"
        ),
        "{sent}"
    );
    let meta = &sent["params"]["metadata"];
    assert_eq!(meta["delivery_id"], "d-1");
    assert_eq!(meta["event"], "issue_comment");
    assert_eq!(meta["issue_number"], 42);
    assert_eq!(meta["source"], "github");
    assert_eq!(headers["x-workspace-id"], "webhook:github");

    // The same delivery again is a replay: refused, the agent not reached.
    let again = deliver(
        &t.client,
        &path,
        "issue_comment",
        Some("d-1"),
        &body,
        sign(&body),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.text());
    // Forged or missing signatures, a signature over other bytes.
    let forged = deliver(
        &t.client,
        &path,
        "issue_comment",
        Some("d-2"),
        &body,
        Some("sha256=00".into()),
    )
    .await;
    assert_eq!(forged.status, 401);
    assert_eq!(forged.json().unwrap()["error"], "invalid webhook signature");
    let unsigned = deliver(&t.client, &path, "issue_comment", Some("d-3"), &body, None).await;
    assert_eq!(unsigned.status, 401);
    let other = deliver(
        &t.client,
        &path,
        "issue_comment",
        Some("d-4"),
        &body,
        sign(b"{}"),
    )
    .await;
    assert_eq!(other.status, 401);
    // Signed but malformed, unaddressed, without a delivery id.
    let bad = b"{not json";
    let r = deliver(
        &t.client,
        &path,
        "issue_comment",
        Some("d-5"),
        bad,
        sign(bad),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = deliver(
        &t.client,
        "/webhooks/github",
        "issue_comment",
        Some("d-6"),
        &body,
        sign(&body),
    )
    .await;
    assert_eq!(r.json().unwrap()["error"], "missing workspace id");
    let r = deliver(&t.client, &path, "issue_comment", None, &body, sign(&body)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Events and actions that wake no agent.
    let r = deliver(&t.client, &path, "push", Some("d-7"), &body, sign(&body)).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json().unwrap()["status"], "ignored");
    let green = serde_json::to_vec(
        &json!({"action": "completed", "workflow_run": {"conclusion": "success"}}),
    )
    .unwrap();
    let r = deliver(
        &t.client,
        &path,
        "workflow_run",
        Some("d-8"),
        &green,
        sign(&green),
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        1,
        "nothing else reached the agent"
    );

    // Addressed by the payload's workspace_id instead of the path.
    let body = serde_json::to_vec(&comment(Some(&ws.to_string()))).unwrap();
    let r = deliver(
        &t.client,
        "/webhooks/github",
        "issue_comment",
        Some("d-9"),
        &body,
        sign(&body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn without_a_secret_github_webhooks_are_unavailable() {
    let t = start().await;
    let body = b"{}";
    let r = deliver(
        &t.client,
        "/webhooks/github",
        "issue_comment",
        Some("d"),
        body,
        sign(body),
    )
    .await;
    assert_eq!(r.status, 503);
    let r = deliver(
        &t.client,
        "/webhooks/github/not-a-uuid",
        "issue_comment",
        Some("d"),
        body,
        sign(body),
    )
    .await;
    assert_eq!(r.status, 404);
}
