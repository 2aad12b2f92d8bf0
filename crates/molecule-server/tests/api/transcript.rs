//! `GET /workspaces/:id/transcript` (api-contract §5.7): the agent's own
//! transcript through the platform — only `since` and `limit` forwarded,
//! never the caller's token, the agent's answer passed through.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

use crate::a2a::{agent_workspace, send_body, workspace_at};
use crate::{call, start};
use molecule_client::Method;

#[tokio::test]
async fn the_transcript_of_a_real_agent_comes_through() {
    let t = start().await;
    let (id, token, _agent) = agent_workspace(&t, "talker", None).await;
    let r = t.client.a2a(id, &send_body("hello")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let c = t.as_workspace(id, &token);
    let (s, body) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{id}/transcript"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let said: Vec<(Value, Value)> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["role"].clone(), e["text"].clone()))
        .collect();
    assert_eq!(
        said,
        [
            (json!("user"), json!("hello")),
            (json!("agent"), json!("echo: hello"))
        ]
    );
    let (s, body) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{id}/transcript?since=1&limit=5"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["entries"].as_array().map(Vec::len), Some(1));
    // The agent's own refusal passes through with its status.
    let (s, body) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{id}/transcript?limit=0"),
        None,
    )
    .await;
    assert_eq!(s, 400, "{body}");
    // No credential: the platform refuses before asking the agent.
    let (s, _) = call(
        &t.client,
        Method::GET,
        &format!("/workspaces/{id}/transcript"),
        None,
    )
    .await;
    assert_eq!(s, 401);
}

type Seen = Arc<Mutex<Vec<(HeaderMap, Option<String>)>>>;

#[tokio::test]
async fn only_since_and_limit_are_forwarded_and_no_token() {
    let t = start().await;
    let seen: Seen = Arc::default();
    async fn answer(
        State(seen): State<Seen>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ([(&'static str, &'static str); 1], &'static str) {
        seen.lock().unwrap().push((headers, query));
        ([("content-type", "text/plain")], "line one\nline two\n")
    }
    let app = Router::new()
        .route("/transcript", get(answer))
        .with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (id, token) = workspace_at(&t, "plain", None, &format!("http://localhost:{port}")).await;
    let c = t.as_workspace(id, &token);
    let r = c
        .request(
            Method::GET,
            &format!("/workspaces/{id}/transcript?since=2026-01-01T00:00:00Z&limit=3&secret=x"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "line one\nline two\n");
    let (headers, query) = seen.lock().unwrap()[0].clone();
    assert_eq!(
        query.as_deref(),
        Some("since=2026-01-01T00%3A00%3A00Z&limit=3"),
        "only since and limit"
    );
    assert!(
        headers.get("authorization").is_none(),
        "platform tokens never reach agents"
    );

    // No URL yet: 503; an agent that is not there: 502.
    let waiting = t.create("waiting", None).await;
    let w = t.minted(waiting).await;
    let (s, body) = call(
        &w,
        Method::GET,
        &format!("/workspaces/{waiting}/transcript"),
        None,
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (503, Some("workspace has no URL"))
    );
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let (gone, gone_token) =
        workspace_at(&t, "gone", None, &format!("http://localhost:{dead_port}")).await;
    let g = t.as_workspace(gone, &gone_token);
    let (s, body) = call(
        &g,
        Method::GET,
        &format!("/workspaces/{gone}/transcript"),
        None,
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (502, Some("workspace unreachable"))
    );
}

/// `GET …/traces`: `[]` without a trace API; with one, its answer for the
/// workspace's tag, asked with basic auth; `[]` again when it is down.
#[tokio::test]
async fn traces_come_from_the_configured_trace_api() {
    let seen: Seen = Arc::default();
    async fn traces(
        State(seen): State<Seen>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> axum::Json<Value> {
        seen.lock().unwrap().push((headers, query));
        axum::Json(json!({"data": [{"id": "trace-1"}], "meta": {"totalItems": 1}}))
    }
    let app = Router::new()
        .route("/api/public/traces", get(traces))
        .with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let plain = start().await;
    let id = plain.create("untraced", None).await;
    let c = plain.minted(id).await;
    let (s, body) = call(&c, Method::GET, &format!("/workspaces/{id}/traces"), None).await;
    assert_eq!((s, body), (200, json!([])), "no trace API configured");

    let host = format!("http://127.0.0.1:{port}");
    let t = crate::start_with(|c| {
        c.langfuse = Some(molecule_server::config::Langfuse {
            host,
            public_key: "pk-lf".into(),
            secret_key: "sk-lf".into(),
        })
    })
    .await;
    let id = t.create("traced", None).await;
    let c = t.minted(id).await;
    let (s, body) = call(&c, Method::GET, &format!("/workspaces/{id}/traces"), None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"][0]["id"], "trace-1");
    let (headers, query) = seen.lock().unwrap()[0].clone();
    assert_eq!(
        query.as_deref(),
        Some(format!("limit=20&orderBy=timestamp&orderDir=desc&tags={id}").as_str())
    );
    // base64("pk-lf:sk-lf")
    assert_eq!(headers["authorization"], "Basic cGstbGY6c2stbGY=");
    let (s, _) = call(
        &t.client,
        Method::GET,
        &format!("/workspaces/{id}/traces"),
        None,
    )
    .await;
    assert_eq!(s, 401);

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let down = crate::start_with(|c| {
        c.langfuse = Some(molecule_server::config::Langfuse {
            host: dead,
            public_key: "pk".into(),
            secret_key: "sk".into(),
        })
    })
    .await;
    let id = down.create("down", None).await;
    let c = down.minted(id).await;
    let (s, body) = call(&c, Method::GET, &format!("/workspaces/{id}/traces"), None).await;
    assert_eq!((s, body), (200, json!([])), "an unreachable trace API");
}
