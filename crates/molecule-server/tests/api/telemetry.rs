//! OpenTelemetry (issue 15, item 5): a delegation's trace reaches a local
//! OTLP/HTTP receiver with the platform's spans and the agent's span in one
//! trace; a caller's `traceparent` is continued and answered; with no
//! `OTEL_*` set, nothing is exported and a caller's `traceparent` reaches
//! the agent unchanged.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use molecule_agent::config::{AgentConfig, ExecutorConfig};
use molecule_telemetry::Settings;
use molecule_types::dto::RegisterRequest;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::a2a::{send_body, spawn_upstream};
use crate::{TestServer, eventually, start, start_with};

type Received = Arc<Mutex<Vec<Value>>>;

/// A local OTLP/HTTP receiver: every span it was sent, with its service.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    async fn traces(State(r): State<Received>, body: Bytes) -> &'static str {
        let v: Value = serde_json::from_slice(&body).unwrap();
        for rs in v["resourceSpans"].as_array().unwrap() {
            let service = rs["resource"]["attributes"][0]["value"]["stringValue"].clone();
            for ss in rs["scopeSpans"].as_array().unwrap() {
                for span in ss["spans"].as_array().unwrap() {
                    let mut span = span.clone();
                    span["service"] = service.clone();
                    r.lock().unwrap().push(span);
                }
            }
        }
        "{}"
    }
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(received.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn settings(base: &str, service: &str) -> Settings {
    let env = |k: &str| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(base.to_string()),
        "OTEL_BSP_SCHEDULE_DELAY" => Some("50".to_string()),
        _ => None,
    };
    Settings::from_env(service, env).unwrap().unwrap()
}

/// An echo agent exporting to `base`, registered as a new workspace.
async fn traced_agent(
    t: &TestServer,
    name: &str,
    parent: Option<Uuid>,
    base: &str,
) -> (Uuid, String, molecule_agent::RunningAgent) {
    let mut config = AgentConfig::standalone(ExecutorConfig::Echo {
        delay: Duration::ZERO,
    });
    config.otel = Some(settings(base, "molecule-agent"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent = molecule_agent::start(config, listener).await.unwrap();
    let id = t.create(name, parent).await;
    let token = t
        .client
        .register(&RegisterRequest {
            id: id.to_string(),
            url: agent.url().to_string(),
            agent_card: agent.card().clone(),
        })
        .await
        .unwrap()
        .auth_token
        .unwrap();
    (id, token, agent)
}

fn span<'a>(spans: &'a [Value], name: &str) -> Option<&'a Value> {
    spans.iter().find(|s| s["name"] == name)
}

#[tokio::test]
async fn a_delegation_is_one_trace_from_the_platform_to_the_agent() {
    let (otlp, received) = receiver().await;
    let server_settings = settings(&otlp, "molecule");
    let t = start_with(move |c| c.otel = Some(server_settings)).await;
    let (lead, lead_token, _a) = traced_agent(&t, "lead", None, &otlp).await;
    let (worker, _, _b) = traced_agent(&t, "worker", Some(lead), &otlp).await;
    let r = t
        .as_workspace(lead, &lead_token)
        .delegate(lead, worker, "trace me", None)
        .await
        .unwrap();
    assert_eq!(r["status"], "delegated");

    let spans = eventually(Duration::from_secs(20), || async {
        let spans = received.lock().unwrap().clone();
        let ready = span(&spans, "delegation").is_some()
            && span(&spans, "a2a.proxy").is_some()
            && span(&spans, "a2a message/send").is_some();
        ready.then_some(spans)
    })
    .await
    .expect("the delegation's spans reach the receiver");
    let (delegation, proxy, agent) = (
        span(&spans, "delegation").unwrap(),
        span(&spans, "a2a.proxy").unwrap(),
        span(&spans, "a2a message/send").unwrap(),
    );
    assert_eq!(delegation["traceId"], proxy["traceId"], "one trace");
    assert_eq!(proxy["traceId"], agent["traceId"], "the agent continues it");
    assert_eq!(proxy["parentSpanId"], delegation["spanId"]);
    assert_eq!(agent["parentSpanId"], proxy["spanId"]);
    assert_eq!(
        (delegation["service"].as_str(), agent["service"].as_str()),
        (Some("molecule"), Some("molecule-agent"))
    );
    assert_eq!(proxy["kind"], 2);

    // A caller's own trace is continued, and its context comes back.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = t
        .client
        .raw(
            molecule_client::Method::POST,
            format!("/workspaces/{worker}/a2a"),
        )
        .header("content-type", "application/json")
        .header(
            "traceparent",
            format!("00-{caller_trace}-00f067aa0ba902b7-01"),
        )
        .body(send_body("traced call").to_string().into_bytes())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let back = r.header("traceparent").expect("traceparent in the answer");
    assert!(back.contains(caller_trace), "{back}");
    let proxied = eventually(Duration::from_secs(20), || async {
        let spans = received.lock().unwrap().clone();
        let proxy = spans
            .iter()
            .find(|s| s["name"] == "a2a.proxy" && s["traceId"] == caller_trace)
            .cloned()?;
        let agent = spans
            .iter()
            .find(|s| s["name"] == "a2a message/send" && s["traceId"] == caller_trace)
            .cloned()?;
        Some((proxy, agent))
    })
    .await
    .expect("the caller's trace has the proxy's and the agent's span");
    assert_eq!(proxied.0["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(proxied.1["parentSpanId"], proxied.0["spanId"]);
}

#[tokio::test]
async fn without_otel_settings_a_traceparent_passes_through_unchanged() {
    let t = start().await;
    let (url, up) =
        spawn_upstream(|_| (200, json!({"jsonrpc": "2.0", "id": "req-1", "result": {}}))).await;
    let (id, _) = crate::a2a::workspace_at(&t, "plain", None, &url).await;
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = t
        .client
        .raw(
            molecule_client::Method::POST,
            format!("/workspaces/{id}/a2a"),
        )
        .header("content-type", "application/json")
        .header("traceparent", tp)
        .body(send_body("x").to_string().into_bytes())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let (headers, _) = up.last.lock().unwrap().clone().unwrap();
    assert_eq!(headers["traceparent"], tp);
    // No trace context in, none made up.
    let r = t.client.a2a(id, &send_body("y")).await.unwrap();
    assert_eq!(r.status, 200);
    let (headers, _) = up.last.lock().unwrap().clone().unwrap();
    assert!(headers.get("traceparent").is_none());
}
