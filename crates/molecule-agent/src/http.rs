//! The HTTP surface: `POST /` (A2A JSON-RPC, including the SSE answer of
//! `message/stream`), the agent card at both well-known paths, and
//! `GET /health`.
//!
//! Handlers only frame: parse the envelope, dispatch by method to the runner,
//! wrap the answer. JSON-RPC errors are sent with HTTP 200, as JSON-RPC over
//! HTTP does; only a body too large for the server gets an HTTP error (413).
//! A streaming method (`message/stream`, `tasks/resubscribe`) always answers
//! with an event stream, its error included: one event holding the JSON-RPC
//! error, so a streaming client reads it where it reads events.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::jsonrpc::{
    self, EXTENDED_CARD_NOT_CONFIGURED, METHOD_NOT_FOUND, PUSH_NOT_SUPPORTED, RpcError,
};
use crate::runner::Runner;

/// What the handlers share.
#[derive(Debug)]
pub struct HttpState {
    pub card: Value,
    pub runner: Runner,
    /// Continues the caller's trace (`traceparent`) with a span per call.
    pub telemetry: molecule_telemetry::Telemetry,
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/", post(rpc))
        .route("/.well-known/agent-card.json", get(card))
        .route("/.well-known/agent.json", get(card))
        .route("/health", get(health))
        .route("/transcript", get(transcript))
        .with_state(state)
}

async fn card(State(state): State<Arc<HttpState>>) -> Json<Value> {
    Json(state.card.clone())
}

/// `?since=<seq>&limit=<n>` of `GET /transcript`.
#[derive(Debug, serde::Deserialize)]
struct TranscriptQuery {
    since: Option<String>,
    limit: Option<String>,
}

/// Most entries one transcript read returns (and the default).
const TRANSCRIPT_MAX: usize = 1000;
const TRANSCRIPT_DEFAULT: usize = 100;

/// `GET /transcript`: every message said, numbered, oldest first;
/// `next_since` is what to ask for next.
async fn transcript(
    State(state): State<Arc<HttpState>>,
    axum::extract::Query(q): axum::extract::Query<TranscriptQuery>,
) -> Response {
    let bad = |m: &str| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({ "error": m })),
        )
            .into_response()
    };
    let since = match q.since.as_deref().map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad("since must be a transcript sequence number"),
    };
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => TRANSCRIPT_DEFAULT,
        Some(Ok(n)) if (1..=TRANSCRIPT_MAX).contains(&n) => n,
        Some(_) => return bad("limit must be between 1 and 1000"),
    };
    let entries = state.runner.transcript(since, limit);
    let next_since = entries.last().map_or(since, |e| e.seq);
    Json(json!({ "entries": entries, "next_since": next_since })).into_response()
}

fn state_name(task: &crate::a2a::Task) -> String {
    serde_json::to_value(task.status.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn rpc(
    State(state): State<Arc<HttpState>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let request = match jsonrpc::parse(&body) {
        Ok(request) => request,
        Err(response) => return Json(response).into_response(),
    };
    let parent = headers
        .get(molecule_telemetry::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(molecule_telemetry::SpanContext::parse);
    let mut span = state.telemetry.start(
        &format!("a2a {}", request.method),
        molecule_telemetry::SpanKind::Server,
        parent,
    );
    span.set_attribute("rpc.method", &request.method);
    let id = request.id;
    let runner = &state.runner;
    let answer = match request.method.as_str() {
        "message/send" => runner.send(request.params).await,
        "message/stream" => return sse(id, runner.stream(request.params)),
        "tasks/resubscribe" => return sse(id, runner.resubscribe(request.params)),
        "tasks/get" => runner.get(request.params),
        "tasks/cancel" => runner.cancel(request.params),
        "agent/getAuthenticatedExtendedCard" => Err(RpcError::new(
            EXTENDED_CARD_NOT_CONFIGURED,
            "this agent has no authenticated extended card",
        )),
        method if method.starts_with("tasks/pushNotificationConfig/") => Err(RpcError::new(
            PUSH_NOT_SUPPORTED,
            "push notifications are not supported by this agent",
        )),
        method => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    };
    let envelope = match answer {
        Ok(task) => {
            span.set_attribute("a2a.task_id", &task.id);
            span.set_attribute("a2a.task_state", state_name(&task));
            jsonrpc::success(&id, &task)
        }
        Err(error) => {
            span.set_error(&error.message);
            jsonrpc::failure(&id, &error)
        }
    };
    span.end();
    Json(envelope).into_response()
}

/// One `data:` event per stream event, each a JSON-RPC response with the
/// request's id; an error is the one event. hyper writes each event as soon
/// as it is produced.
fn sse(
    id: Value,
    events: Result<tokio::sync::mpsc::Receiver<crate::a2a::StreamEvent>, RpcError>,
) -> Response {
    let events = match events {
        Ok(events) => events,
        Err(error) => {
            let data = jsonrpc::failure(&id, &error).to_string();
            let once = futures_util::stream::once(async move {
                Ok::<_, Infallible>(Event::default().data(data))
            });
            return Sse::new(once).into_response();
        }
    };
    let stream = futures_util::stream::unfold((events, id), |(mut events, id)| async move {
        let event = events.recv().await?;
        let data = jsonrpc::success(&id, &event).to_string();
        Some((
            Ok::<_, Infallible>(Event::default().data(data)),
            (events, id),
        ))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
