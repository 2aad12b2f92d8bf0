use molecule_client::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::start;

async fn send(t: &crate::TestServer, method: Method, path: &str, body: &[u8]) -> (u16, Value) {
    let r = t
        .client
        .raw(method, path)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    (r.status, r.json().unwrap_or(Value::Null))
}

#[tokio::test]
async fn malformed_bodies_get_400_and_change_nothing() {
    let t = start().await;
    let id = t.create("w", None).await;
    let paths = [
        (Method::POST, "/workspaces".to_string()),
        (Method::PATCH, format!("/workspaces/{id}")),
        (Method::POST, "/registry/register".to_string()),
        (Method::POST, "/registry/heartbeat".to_string()),
        (Method::POST, "/registry/update-card".to_string()),
        (Method::POST, "/registry/check-access".to_string()),
    ];
    for (m, p) in &paths {
        for body in [
            &b""[..],
            b"{",
            b"[1,2]",
            b"\"str\"",
            b"{\"name\": 5, \"id\": 7}",
        ] {
            let (status, json) = send(&t, m.clone(), p, body).await;
            assert_eq!(status, 400, "{m} {p} {:?}", String::from_utf8_lossy(body));
            assert!(json["error"].is_string(), "{m} {p}: {json}");
        }
    }
    let (_, empty) = send(&t, Method::POST, "/workspaces", b"").await;
    assert!(empty["error"].as_str().unwrap().contains("EOF"), "{empty}");
    let ws = t.client.get_workspace(id).await.unwrap();
    assert_eq!(ws.name, "w");
    assert_eq!(t.client.list_workspaces().await.unwrap().len(), 1);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let t = start().await;
    let huge = format!("{{\"name\": \"{}\"}}", "a".repeat(2 << 20));
    let (status, json) = send(&t, Method::POST, "/workspaces", huge.as_bytes()).await;
    assert_eq!(status, 413);
    assert!(json["error"].as_str().unwrap().contains("too large"));
    assert!(t.client.list_workspaces().await.unwrap().is_empty());
}

#[tokio::test]
async fn non_uuid_and_unknown_ids() {
    let t = start().await;
    for path in [
        "/workspaces/not-a-uuid",
        "/workspaces/..%2F..%2Fetc%2Fpasswd",
        &format!("/workspaces/{}", Uuid::new_v4()),
    ] {
        let r = t.client.request(Method::GET, path, None).await.unwrap();
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json().unwrap(), json!({"error": "workspace not found"}));
    }
    let r = t
        .client
        .request(Method::GET, "/workspaces/not-a-uuid/state", None)
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = t
        .client
        .request(
            Method::POST,
            "/registry/heartbeat",
            Some(&json!({"workspace_id": "nope"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let r = t
        .client
        .request(
            Method::POST,
            "/registry/register",
            Some(&json!({"id": "../../x", "url": "http://a.test", "agent_card": {}})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let r = t
        .client
        .request(Method::GET, "/registry/not-a-uuid/peers", None)
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = t
        .client
        .request(Method::GET, "/admin/workspaces/nope/test-token", None)
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = t
        .client
        .request(
            Method::POST,
            "/registry/check-access",
            Some(&json!({"caller_id": "x", "target_id": "y"})),
        )
        .await
        .unwrap();
    assert_eq!(r.json().unwrap(), json!({"allowed": false}));
    let r = t
        .client
        .request(
            Method::POST,
            "/registry/check-access",
            Some(&json!({"caller_id": "", "target_id": "y"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_plain_404() {
    let t = start().await;
    for (m, p) in [
        (Method::GET, "/nope"),
        (Method::PUT, "/workspaces"),
        (Method::POST, "/health"),
    ] {
        let r = t.client.request(m.clone(), p, None).await.unwrap();
        assert_eq!(
            (r.status, r.text().as_str()),
            (404, "404 page not found"),
            "{m} {p}"
        );
    }
}

#[tokio::test]
async fn wrong_tokens_get_401() {
    let t = start().await;
    let id = t.create("w", None).await;
    let token = t.register(id).await;
    for bearer in ["", "Bearer", "Bearer nope", "bearer {token}", "Basic abc"] {
        let value = bearer.replace("{token}", &token);
        let r = t
            .client
            .raw(Method::GET, format!("/workspaces/{id}/state"))
            .header("authorization", value.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status, 401, "{value:?}");
    }
}
