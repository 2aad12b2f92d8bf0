//! What the A2A proxy does with bodies: normalising the envelope only
//! where needed, passing answers and A2A headers through, the size caps,
//! clear errors for bad requests, and bodies logged in a form the
//! activity listings can read back.

use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

use crate::a2a::{send_body, spawn_upstream, workspace_at};
use crate::{TestServer, eventually, start};

/// POST `body` as JSON to `path`, byte for byte.
async fn post_raw(t: &TestServer, path: String, body: Vec<u8>) -> molecule_client::RawResponse {
    t.client
        .raw(molecule_client::Method::POST, path)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn bodies_are_normalised_only_where_needed_and_headers_pass_through() {
    let t = start().await;
    let (url, up) = spawn_upstream(|_| {
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1, "result": {"ok": true}}),
        )
    })
    .await;
    let (id, _) = workspace_at(&t, "up", None, &url).await;

    // A complete envelope with an unknown method: forwarded byte for byte.
    let raw = br#"{"jsonrpc":"2.0","id":42,"method":"tasks/pushNotificationConfig/list","params":{"x":[1,2]},"extra":"kept"}"#;
    let r = t
        .client
        .raw(
            molecule_client::Method::POST,
            format!("/workspaces/{id}/a2a"),
        )
        .header("content-type", "application/json")
        .header("A2A-Version", "1.0")
        .header("A2A-Extensions", "https://example.com/ext/v1")
        .body(raw.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().unwrap()["result"]["ok"], true);
    let (headers, body) = up.last.lock().unwrap().clone().unwrap();
    assert_eq!(&body[..], &raw[..], "untouched");
    assert_eq!(headers["a2a-version"], "1.0");
    assert_eq!(headers["a2a-extensions"], "https://example.com/ext/v1");
    assert!(
        headers.get("authorization").is_none(),
        "platform tokens never reach agents"
    );

    // A message without messageId gets one; nothing else changes.
    let r = t
        .client
        .a2a(
            id,
            &json!({"jsonrpc": "2.0", "id": 41, "method": "message/send",
            "params": {"message": {"role": "user", "parts": []}}, "extra": 1}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let (_, body) = up.last.lock().unwrap().clone().unwrap();
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent["id"], 41, "the caller's id");
    assert_eq!(sent["extra"], 1);
    assert!(sent["params"]["message"]["messageId"].is_string());

    // A body without `jsonrpc` is not rewritten into a new request: it is
    // answered as the invalid request it is, with its id, and not forwarded.
    let hits = up.hits.load(std::sync::atomic::Ordering::SeqCst);
    let r = t
        .client
        .a2a(
            id,
            &json!({"id": "bare-1", "method": "message/send", "params": {}}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json().unwrap();
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], "bare-1");
    assert_eq!(answer["error"]["code"], -32600);
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), hits);
}

#[tokio::test]
async fn bodies_json_readers_refuse_are_logged_as_text_and_listings_still_work() {
    let t = start().await;
    // A NUL in the answer: fine for serde_json, refused by jsonb.
    let (url, up) = spawn_upstream(|_| {
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1, "result": {"text": "nul \u{0} here"}}),
        )
    })
    .await;
    let (id, token) = workspace_at(&t, "up", None, &url).await;
    // A lone surrogate and a number past f64: JSON grammar, but neither
    // serde_json::Value nor jsonb takes them back; a NUL in the method,
    // which PostgreSQL text refuses. Forwarded untouched all the same.
    let raw = br#"{"jsonrpc":"2.0","id":1,"method":"odd\u0000method","params":{"t":"\ud800 alone","n":1e400}}"#;
    let r = post_raw(&t, format!("/workspaces/{id}/a2a"), raw.to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, body) = up.last.lock().unwrap().clone().unwrap();
    assert_eq!(&body[..], &raw[..]);
    // The writer is not stuck on the odd row: a later call is logged too.
    assert_eq!(
        t.client.a2a(id, &send_body("after")).await.unwrap().status,
        200
    );

    let own = t.as_workspace(id, &token);
    let rows = eventually(Duration::from_secs(5), || async {
        let rows = own.activity(id, "type=a2a_receive").await.unwrap();
        (rows.len() == 2).then_some(rows)
    })
    .await
    .expect("both rows are listed");
    let odd = rows
        .iter()
        .find(|r| r["request_body"].is_string())
        .expect("the odd request is kept as text");
    assert!(
        odd["request_body"]
            .as_str()
            .unwrap()
            .contains(r"\ud800 alone"),
        "{odd}"
    );
    // PostgreSQL keeps U+FFFD where it refuses NUL.
    let text = odd["response_body"]["result"]["text"].as_str().unwrap();
    assert!(
        text == "nul \u{0} here" || text == "nul \u{FFFD} here",
        "{text:?}"
    );
    let method = odd["method"].as_str().unwrap();
    assert!(
        method == "odd\u{0}method" || method == "odd\u{FFFD}method",
        "{method:?}"
    );
    assert!(rows.iter().any(|r| r["request_body"]["params"].is_object()));
}

#[tokio::test]
async fn agent_answers_pass_through_with_their_status() {
    let t = start().await;
    let (url, _) = spawn_upstream(|_| {
        (404, json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32001, "message": "task not found"}}))
    })
    .await;
    let (id, _) = workspace_at(&t, "up", None, &url).await;
    let r = t.client.a2a(id, &send_body("x")).await.unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json().unwrap()["error"]["code"],
        -32001,
        "A2A error codes unchanged"
    );
}

#[tokio::test]
async fn answers_up_to_10_mib_pass_whole_and_larger_ones_are_a_502() {
    let t = start().await;
    // Hit 0: 2 MiB (many reads on the way); hit 1: just over the cap.
    let (url, _) = spawn_upstream(|n| {
        let size = if n == 0 { 2 << 20 } else { (10 << 20) + 1 };
        (
            200,
            json!({"jsonrpc": "2.0", "id": "req-1", "result": {"blob": "x".repeat(size)}}),
        )
    })
    .await;
    let (id, _) = workspace_at(&t, "big", None, &url).await;
    let r = t.client.a2a(id, &send_body("x")).await.unwrap();
    assert_eq!(r.status, 200);
    let blob = r.json().unwrap()["result"]["blob"].as_str().unwrap().len();
    assert_eq!(blob, 2 << 20, "the answer arrives whole");
    let r = t.client.a2a(id, &send_body("x")).await.unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(
        r.json().unwrap()["error"],
        format!("agent response larger than {} bytes", 10 << 20)
    );
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_reach_no_agent() {
    let t = start().await;
    let (url, up) = spawn_upstream(|_| (200, json!({}))).await;
    let (id, _) = workspace_at(&t, "up", None, &url).await;
    // Not JSON-RPC: answered in JSON-RPC, as the agent itself would.
    for (raw, code) in [(&b"{not json"[..], -32700), (b"[1]", -32600)] {
        let r = post_raw(&t, format!("/workspaces/{id}/a2a"), raw.to_vec()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let answer = r.json().unwrap();
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert_eq!(answer["id"], Value::Null);
    }
    let r = post_raw(&t, format!("/workspaces/{id}/a2a"), vec![b' '; 2 << 20]).await;
    assert_eq!(r.status, 413);
    let r = post_raw(&t, "/workspaces/not-a-uuid/a2a".into(), b"{}".to_vec()).await;
    assert_eq!(r.status, 404);
    let r = post_raw(
        &t,
        format!("/workspaces/{}/a2a", Uuid::new_v4()),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        (r.status, r.json().unwrap()["error"].clone()),
        (404, json!("workspace not found"))
    );
    let r = t
        .client
        .clone()
        .with_header("X-Workspace-ID", "not-a-workspace")
        .a2a(id, &send_body("x"))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the agent"
    );

    // A workspace that never registered has no URL.
    let silent = t.create("silent", None).await;
    let r = t.client.a2a(silent, &send_body("x")).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json().unwrap()["status"].is_string());
}
