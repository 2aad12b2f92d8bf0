//! The A2A proxy core: who may call whom, where the agent is, forwarding
//! with deadlines, error mapping and the activity it leaves behind. The
//! HTTP handler (`POST /workspaces/:id/a2a`) and internal callers (the
//! scheduler, delegation) all go through [`App::proxy`], so they share one
//! behaviour.
//!
//! Hot path: no database access once the target is cached (tokens,
//! hierarchy and target are all in memory); the request body is forwarded
//! as received unless it had to be normalised; the upstream exchange runs
//! in its own task, so a client that disconnects does not cancel a task the
//! agent is working on; activity rows and events are produced after the
//! answer has been handed to the client.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::{Bytes, BytesMut};
use molecule_store::NewActivity;
use molecule_types::{Event, EventType, WorkspaceStatus, is_system_caller};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::App;
use super::workspaces::EXTERNAL_RUNTIME;
use crate::config::Mode;
use crate::error::AppError;

/// Largest request body the proxy forwards.
pub const MAX_REQUEST_BODY: usize = 1 << 20;
/// Largest unary agent answer the proxy passes back.
pub const MAX_RESPONSE_BODY: usize = 10 << 20;
/// Bodies larger than this are not copied into activity rows.
pub const MAX_LOGGED_BODY: usize = 256 << 10;
/// Default deadline of a canvas (operator) call.
pub const CANVAS_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Default deadline of a call from a workspace or a platform component.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long a resolved target stays cached without a status write.
const TARGET_TTL: Duration = Duration::from_secs(5);
/// `Retry-After` of a busy answer, seconds.
pub const BUSY_RETRY_AFTER: u64 = 30;
/// Headers of the A2A protocol passed through both ways, untouched.
pub const A2A_HEADERS: [&str; 2] = ["a2a-version", "a2a-extensions"];

/// JSON-RPC methods answered with a server-sent event stream.
pub fn is_streaming_method(method: &str) -> bool {
    matches!(
        method,
        "message/stream" | "tasks/resubscribe" | "SendStreamingMessage" | "SubscribeToTask"
    )
}

/// Who is calling the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No `X-Workspace-ID`: the canvas (an operator).
    Canvas,
    /// Another workspace; hierarchy rules apply.
    Workspace(Uuid),
    /// `system:…`, `webhook:…`, `channel:…`, `test:…`: platform components.
    System(String),
}

impl Caller {
    /// From the `X-Workspace-ID` header.
    pub fn from_header(value: Option<&str>) -> Result<Caller, A2aError> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(Caller::Canvas),
            Some(v) if is_system_caller(v) => Ok(Caller::System(v.to_string())),
            Some(v) => v.parse().map(Caller::Workspace).map_err(|_| {
                A2aError::BadRequest(
                    "X-Workspace-ID must be a workspace UUID or a system caller".into(),
                )
            }),
        }
    }

    fn header_value(&self) -> Option<String> {
        match self {
            Caller::Canvas => None,
            Caller::Workspace(id) => Some(id.to_string()),
            Caller::System(s) => Some(s.clone()),
        }
    }
}

/// One call through the proxy.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    pub target: Uuid,
    pub caller: Caller,
    /// The caller's bearer token (ignored for trusted internal calls).
    pub bearer: Option<String>,
    /// Internal call made by the platform on an already authorised
    /// principal's behalf: no token check (hierarchy rules still apply).
    pub trusted: bool,
    pub body: Bytes,
    /// `A2A-Version` / `A2A-Extensions` of the request.
    pub a2a_headers: Vec<(HeaderName, HeaderValue)>,
    /// `X-Timeout` or an internal caller's deadline.
    pub timeout: Option<Duration>,
}

/// The agent's answer, passed through.
pub struct ProxyResponse {
    pub status: u16,
    pub content_type: Option<HeaderValue>,
    pub a2a_headers: Vec<(HeaderName, HeaderValue)>,
    pub body: ProxyBody,
}

pub enum ProxyBody {
    Full(Bytes),
    /// Server-sent events, chunk by chunk as the agent flushes them.
    Stream(mpsc::Receiver<Bytes>),
}

/// An agent's unary answer.
#[derive(Debug, Clone)]
pub struct A2aReply {
    pub status: u16,
    pub body: Bytes,
    pub duration: Duration,
}

impl A2aReply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a call did not produce an agent answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum A2aError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("access denied: workspaces cannot communicate per hierarchy rules")]
    AccessDenied,
    #[error("workspace not found")]
    NotFound,
    #[error("workspace has no URL")]
    NoUrl { status: String },
    #[error("workspace is {status}")]
    NotServing { status: String },
    #[error("request body too large (limit {MAX_REQUEST_BODY} bytes)")]
    TooLarge,
    #[error("workspace agent busy — retry after a short backoff")]
    Busy,
    #[error("workspace agent unreachable — container restart triggered")]
    Restarting,
    #[error("failed to reach workspace agent")]
    Unreachable(String),
    #[error("agent response larger than {MAX_RESPONSE_BODY} bytes")]
    ResponseTooLarge,
    #[error("failed to read agent response")]
    ReadFailed(String),
    #[error("{0}")]
    Internal(String),
}

impl A2aError {
    /// A short text for logs, activity rows and delegation errors.
    pub fn detail(&self) -> String {
        match self {
            A2aError::Unreachable(cause) | A2aError::ReadFailed(cause) => {
                format!("{self}: {cause}")
            }
            _ => self.to_string(),
        }
    }

    /// Worth one retry (delegation): the agent may answer a moment later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            A2aError::Busy | A2aError::Restarting | A2aError::Unreachable(_)
        )
    }
}

/// What the proxy remembers about a target between status writes.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    /// `url` parsed once, not per call; `None` when it does not parse.
    parsed: Option<reqwest::Url>,
    name: String,
    runtime: String,
    status: WorkspaceStatus,
    at: Instant,
}

/// Resolved targets, dropped on every status write of the workspace and
/// after a few seconds in any case.
#[derive(Clone, Default)]
pub struct TargetCache {
    inner: Arc<Mutex<HashMap<Uuid, Arc<Target>>>>,
}

impl TargetCache {
    fn get(&self, id: Uuid) -> Option<Arc<Target>> {
        let m = self.inner.lock().ok()?;
        m.get(&id).filter(|t| t.at.elapsed() < TARGET_TTL).cloned()
    }
    fn put(&self, id: Uuid, t: Arc<Target>) {
        if let Ok(mut m) = self.inner.lock() {
            m.insert(id, t);
        }
    }
    pub fn invalidate(&self, id: Uuid) {
        if let Ok(mut m) = self.inner.lock() {
            m.remove(&id);
        }
    }
}

/// The request after normalisation.
struct Normalised {
    bytes: Bytes,
    method: String,
}

/// Parse and, where needed, repair the JSON-RPC envelope: a body without
/// `jsonrpc` is rebuilt as `{jsonrpc, id, method, params}`; a
/// `params.message` without `messageId` gets one. Anything else (unknown
/// methods, ids, metadata) is forwarded byte for byte.
fn normalise(body: &Bytes) -> Result<Normalised, A2aError> {
    let parsed: Value =
        serde_json::from_slice(body).map_err(|_| A2aError::BadRequest("invalid JSON".into()))?;
    let Value::Object(mut obj) = parsed else {
        return Err(A2aError::BadRequest("invalid JSON".into()));
    };
    let mut changed = false;
    if !obj.contains_key("jsonrpc") {
        let mut rebuilt = Map::new();
        rebuilt.insert("jsonrpc".into(), json!("2.0"));
        rebuilt.insert("id".into(), json!(Uuid::new_v4().to_string()));
        rebuilt.insert("method".into(), obj.remove("method").unwrap_or(Value::Null));
        rebuilt.insert("params".into(), obj.remove("params").unwrap_or(Value::Null));
        obj = rebuilt;
        changed = true;
    }
    if let Some(Value::Object(message)) = obj
        .get_mut("params")
        .and_then(|p| p.as_object_mut())
        .and_then(|p| p.get_mut("message"))
        && !message.contains_key("messageId")
    {
        message.insert("messageId".into(), json!(Uuid::new_v4().to_string()));
        changed = true;
    }
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let json = Value::Object(obj);
    let bytes = if changed {
        Bytes::from(serde_json::to_vec(&json).map_err(|e| A2aError::Internal(e.to_string()))?)
    } else {
        body.clone()
    };
    Ok(Normalised { bytes, method })
}

/// A body for an activity row, as JSON text: the body itself when it is
/// small valid JSON (checked without building a tree), a JSON string when
/// it is not JSON, a marker when it is too large.
fn loggable(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    if bytes.len() > MAX_LOGGED_BODY {
        return Some(json!({ "truncated": true, "bytes": bytes.len() }).to_string());
    }
    let valid = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
    match std::str::from_utf8(bytes) {
        Ok(text) if valid => Some(text.to_string()),
        _ => Some(Value::String(String::from_utf8_lossy(bytes).into_owned()).to_string()),
    }
}

/// What the exchange task learned, for the activity row.
struct Outcome {
    status: Option<u16>,
    /// JSON text.
    response: Option<String>,
    error: Option<String>,
    duration: Duration,
}

/// Everything the exchange task needs to record what happened.
struct Exchange {
    app: App,
    target: Uuid,
    target_name: String,
    caller: Caller,
    method: String,
    /// The request body as JSON text.
    request: String,
}

impl Exchange {
    fn record(self, o: Outcome) {
        let ok = o.error.is_none() && o.status.is_some_and(|s| s < 400);
        let summary = match &o.error {
            None => format!("{} → {}", self.method, self.target_name),
            Some(e) => format!("A2A request to {} failed: {e}", self.target_name),
        };
        let mut row = NewActivity::new(self.target, "a2a_receive");
        match &self.caller {
            Caller::Canvas => {}
            Caller::Workspace(id) => row.source_id = Some(*id),
            Caller::System(s) => row.source_label = Some(s.clone()),
        }
        row.target_id = Some(self.target);
        row.method = Some(self.method.clone());
        row.summary = Some(summary);
        row.request_raw = Some(self.request);
        let canvas_answer =
            self.caller == Caller::Canvas && ok && self.app.events.has_subscribers();
        let response_for_event = if canvas_answer {
            o.response
                .as_deref()
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
        } else {
            None
        };
        row.response_raw = o.response;
        row.duration_ms = Some(o.duration.as_millis() as i64);
        row.status = if ok { "ok" } else { "error" }.to_string();
        row.error_detail = o
            .error
            .clone()
            .or_else(|| (!ok).then(|| format!("HTTP {}", o.status.unwrap_or_default())));
        if self.app.config.a2a_activity {
            self.app.record_activity_announced(row);
        }
        if canvas_answer {
            self.app.events.publish_live(Event::new(
                EventType::A2aResponse,
                self.target,
                json!({
                    "response_body": response_for_event,
                    "method": self.method,
                    "duration_ms": o.duration.as_millis() as u64,
                }),
            ));
        }
        let outcome = match (ok, &o.error) {
            (true, _) => "ok",
            (false, None) => "agent_error",
            (false, Some(_)) => "transport_error",
        };
        self.app
            .metrics
            .inc("molecule_a2a_requests_total", &[("outcome", outcome)]);
    }
}

impl App {
    /// Forget what the proxy knows about `id` (after any change of it).
    pub fn forget_target(&self, id: Uuid) {
        self.targets.invalidate(id);
    }

    async fn resolve_target(&self, id: Uuid) -> Result<Arc<Target>, A2aError> {
        if let Some(t) = self.targets.get(id) {
            return Ok(t);
        }
        let generation = self.hot.generation();
        let row = self
            .store
            .workspace_get(id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, workspace_id = %id, "a2a target lookup failed");
                A2aError::Internal("lookup failed".into())
            })?
            .ok_or(A2aError::NotFound)?;
        let t = Arc::new(Target {
            parsed: row.url.as_deref().and_then(|u| reqwest::Url::parse(u).ok()),
            url: row.url.unwrap_or_default(),
            name: row.name,
            runtime: row.runtime,
            status: row.status,
            at: Instant::now(),
        });
        // Cache only when no status write raced with the read.
        if self.hot.generation() == generation {
            self.targets.put(id, t.clone());
        }
        Ok(t)
    }

    async fn authorize(&self, req: &ProxyRequest) -> Result<(), A2aError> {
        let production = self.config.mode == Mode::Production;
        let to_a2a = |e: AppError| match e {
            AppError::Unauthenticated(m) => A2aError::Unauthenticated(m),
            other => A2aError::Internal(other.to_string()),
        };
        match &req.caller {
            Caller::Canvas | Caller::System(_) => {
                // Production: an operator (admin token) only. Development:
                // trusted as in the reference.
                if production && !req.trusted {
                    self.auth_admin(req.bearer.as_deref()).map_err(to_a2a)?;
                }
                Ok(())
            }
            Caller::Workspace(caller) => {
                if !req.trusted && production {
                    // Production: a workspace caller proves who it is, always
                    // (no "no token yet, so anything goes").
                    self.auth_caller_strict(*caller, req.bearer.as_deref())
                        .await
                        .map_err(to_a2a)?;
                } else if !req.trusted && *caller != req.target {
                    self.auth_lazy(*caller, req.bearer.as_deref(), "caller")
                        .await
                        .map_err(to_a2a)?;
                }
                if *caller != req.target
                    && !self.hierarchy.can_communicate(*caller, req.target).await
                {
                    return Err(A2aError::AccessDenied);
                }
                Ok(())
            }
        }
    }

    /// The caller's own token (or the admin token), required.
    async fn auth_caller_strict(&self, caller: Uuid, bearer: Option<&str>) -> Result<(), AppError> {
        let Some(token) = bearer else {
            return Err(AppError::unauthenticated("missing caller auth token"));
        };
        if self.auth_admin(Some(token)).is_ok() {
            return Ok(());
        }
        match self.token_owner(token).await? {
            Some(owner) if owner == caller => Ok(()),
            _ => Err(AppError::unauthenticated("invalid caller auth token")),
        }
    }

    /// One call through the proxy: authorise, resolve, normalise, forward,
    /// map errors, record. See the module docs.
    pub async fn proxy(&self, req: ProxyRequest) -> Result<ProxyResponse, A2aError> {
        if req.body.len() > MAX_REQUEST_BODY {
            return Err(A2aError::TooLarge);
        }
        self.authorize(&req).await?;
        let target = self.resolve_target(req.target).await?;
        match target.status {
            WorkspaceStatus::Removed => return Err(A2aError::NotFound),
            WorkspaceStatus::Paused | WorkspaceStatus::Provisioning => {
                return Err(A2aError::NotServing {
                    status: target.status.as_str().to_string(),
                });
            }
            _ => {}
        }
        if target.url.is_empty() {
            return Err(A2aError::NoUrl {
                status: target.status.as_str().to_string(),
            });
        }
        let n = normalise(&req.body)?;
        let streaming = is_streaming_method(&n.method);
        let deadline = match (streaming, req.timeout) {
            (true, _) => None,
            (false, Some(t)) => Some(t),
            (false, None) if req.caller == Caller::Canvas => Some(CANVAS_TIMEOUT),
            (false, None) => Some(AGENT_TIMEOUT),
        };
        let mut builder = self
            .a2a_http
            .post(target.parsed.clone().ok_or_else(|| {
                A2aError::Unreachable(format!("invalid workspace URL {:?}", target.url))
            })?)
            .header("content-type", "application/json")
            .body(n.bytes.clone());
        if let Some(c) = req.caller.header_value() {
            builder = builder.header("x-workspace-id", c);
        }
        for (k, v) in &req.a2a_headers {
            builder = builder.header(k, v);
        }
        if let Some(d) = deadline {
            builder = builder.timeout(d);
        }
        let exchange = Exchange {
            app: self.clone(),
            target: req.target,
            target_name: target.name.clone(),
            caller: req.caller.clone(),
            method: n.method,
            // Already parsed by `normalise`: valid JSON (hence UTF-8).
            request: if n.bytes.len() > MAX_LOGGED_BODY {
                json!({ "truncated": true, "bytes": n.bytes.len() }).to_string()
            } else {
                String::from_utf8_lossy(&n.bytes).into_owned()
            },
        };
        let (tx, mut rx) = oneshot::channel();
        let external = target.runtime == EXTERNAL_RUNTIME;
        // Detached: the agent's task runs to its end even when the client
        // goes away; the deadline still applies.
        let exchange = async move {
            let started = Instant::now();
            let result = builder.send().await;
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let err = exchange
                        .app
                        .transport_error(exchange.target, external, &e)
                        .await;
                    exchange.record(Outcome {
                        status: None,
                        response: None,
                        error: Some(err.detail()),
                        duration: started.elapsed(),
                    });
                    let _ = tx.send(Err(err));
                    return;
                }
            };
            let status = resp.status().as_u16();
            let content_type = resp.headers().get("content-type").cloned();
            let a2a_headers = a2a_headers_of(resp.headers());
            let is_sse = content_type
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if streaming && is_sse {
                stream_through(
                    exchange,
                    resp,
                    status,
                    content_type,
                    a2a_headers,
                    tx,
                    started,
                )
                .await;
                return;
            }
            match read_capped(resp).await {
                Ok(body) => {
                    let duration = started.elapsed();
                    let response = loggable(&body);
                    let _ = tx.send(Ok(ProxyResponse {
                        status,
                        content_type: Some(HeaderValue::from_static("application/json")),
                        a2a_headers,
                        body: ProxyBody::Full(body),
                    }));
                    exchange.record(Outcome {
                        status: Some(status),
                        response,
                        error: None,
                        duration,
                    });
                }
                Err(err) => {
                    exchange.record(Outcome {
                        status: Some(status),
                        response: None,
                        error: Some(err.detail()),
                        duration: started.elapsed(),
                    });
                    let _ = tx.send(Err(err));
                }
            }
        };
        // The exchange runs inline (no task hop for the common unary call)
        // but never dies with the client: whatever is left of it when this
        // future is dropped, or when a stream outlives the answer, is
        // spawned.
        let mut detached = DetachOnDrop(Some(Box::pin(exchange)));
        let early = match detached.0.as_mut() {
            Some(fut) => tokio::select! {
                biased;
                _ = fut => None,
                r = &mut rx => Some(r),
            },
            None => None,
        };
        match early {
            Some(r) => {
                r.unwrap_or_else(|_| Err(A2aError::Internal("proxy task ended early".into())))
            }
            None => {
                detached.0 = None;
                rx.await
                    .unwrap_or_else(|_| Err(A2aError::Internal("proxy task ended early".into())))
            }
        }
    }

    /// Map a transport failure: a runtime that is gone → governed restart
    /// (503 restarting); a timeout or a dropped connection to a running
    /// agent → 503 busy; anything else → 502.
    async fn transport_error(&self, id: Uuid, external: bool, e: &reqwest::Error) -> A2aError {
        if !external && self.reactive_check(id).await {
            self.forget_target(id);
            return A2aError::Restarting;
        }
        // Whatever it was, the next call reads the target afresh.
        self.forget_target(id);
        let text = error_chain(e);
        let lower = text.to_lowercase();
        if e.is_timeout()
            || lower.contains("connection reset")
            || lower.contains("connection closed")
            || lower.contains("incomplete message")
            || lower.contains("eof")
        {
            A2aError::Busy
        } else {
            A2aError::Unreachable(text)
        }
    }

    /// Send a `message/send` with one text part to `target` as `caller`
    /// (a trusted internal call: hierarchy rules apply, tokens are not
    /// asked for), waiting at most `timeout`.
    pub async fn a2a_message(
        &self,
        target: Uuid,
        caller: Caller,
        text: &str,
        message_id: String,
        timeout: Duration,
    ) -> Result<A2aReply, A2aError> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": Uuid::new_v4().to_string(),
            "method": "message/send",
            "params": {
                "message": {
                    "role": "user",
                    "messageId": message_id,
                    "parts": [{ "kind": "text", "text": text }],
                }
            }
        });
        self.a2a_call(target, caller, body, timeout).await
    }

    /// Send a JSON-RPC request body through the proxy as a trusted internal
    /// caller and wait for the whole answer.
    pub async fn a2a_call(
        &self,
        target: Uuid,
        caller: Caller,
        body: Value,
        timeout: Duration,
    ) -> Result<A2aReply, A2aError> {
        let started = Instant::now();
        let resp = self
            .proxy(ProxyRequest {
                target,
                caller,
                bearer: None,
                trusted: true,
                body: Bytes::from(body.to_string()),
                a2a_headers: Vec::new(),
                timeout: Some(timeout),
            })
            .await?;
        let body = match resp.body {
            ProxyBody::Full(b) => b,
            ProxyBody::Stream(mut rx) => {
                let mut buf = BytesMut::new();
                while let Some(chunk) = rx.recv().await {
                    buf.extend_from_slice(&chunk);
                }
                buf.freeze()
            }
        };
        Ok(A2aReply {
            status: resp.status,
            body,
            duration: started.elapsed(),
        })
    }
}

/// Holds a future polled inline; if it has not finished when this is
/// dropped, the rest of it is spawned so it still runs to its end.
struct DetachOnDrop(Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>);

impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        if let Some(fut) = self.0.take() {
            tokio::spawn(fut);
        }
    }
}

/// The `A2A-Version` / `A2A-Extensions` headers of a request or an answer
/// (reqwest and axum share the `http` types).
pub fn a2a_headers_of(h: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    A2A_HEADERS
        .iter()
        .filter_map(|name| {
            h.get(*name)
                .map(|v| (HeaderName::from_static(name), v.clone()))
        })
        .collect()
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn read_capped(mut resp: reqwest::Response) -> Result<Bytes, A2aError> {
    if resp
        .content_length()
        .is_some_and(|n| n as usize > MAX_RESPONSE_BODY)
    {
        return Err(A2aError::ResponseTooLarge);
    }
    let mut buf = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_RESPONSE_BODY {
                    return Err(A2aError::ResponseTooLarge);
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) if e.is_timeout() => return Err(A2aError::Busy),
            Err(e) => return Err(A2aError::ReadFailed(error_chain(&e))),
        }
    }
}

/// Pass an SSE answer through chunk by chunk. If the client goes away the
/// agent's stream is still read to its end (so its task is not cancelled)
/// and the activity row is written when it ends.
async fn stream_through(
    exchange: Exchange,
    mut resp: reqwest::Response,
    status: u16,
    content_type: Option<HeaderValue>,
    a2a_headers: Vec<(HeaderName, HeaderValue)>,
    tx: oneshot::Sender<Result<ProxyResponse, A2aError>>,
    started: Instant,
) {
    let (chunks_tx, chunks_rx) = mpsc::channel::<Bytes>(64);
    let _ = tx.send(Ok(ProxyResponse {
        status,
        content_type,
        a2a_headers,
        body: ProxyBody::Stream(chunks_rx),
    }));
    let mut client_gone = false;
    let mut events = 0usize;
    let mut error = None;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                events += chunk.windows(2).filter(|w| w == b"\n\n").count();
                if !client_gone && chunks_tx.send(chunk).await.is_err() {
                    client_gone = true;
                }
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(format!("stream interrupted: {}", error_chain(&e)));
                break;
            }
        }
    }
    exchange.record(Outcome {
        status: Some(status),
        response: Some(
            json!({ "stream": true, "events": events, "client_disconnected": client_gone })
                .to_string(),
        ),
        error,
        duration: started.elapsed(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_envelope_is_forwarded_byte_for_byte() {
        let body = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":7,"method":"x/unknown","params":{"message":{"messageId":"m","parts":[]}},"extra":1}"#,
        );
        let n = normalise(&body).unwrap();
        assert_eq!(n.bytes, body, "untouched bytes, unknown keys kept");
        assert_eq!(n.method, "x/unknown");
    }

    #[test]
    fn a_bare_body_is_wrapped_and_gets_a_message_id() {
        let body = Bytes::from_static(
            br#"{"method":"message/send","params":{"message":{"role":"user","parts":[]}},"dropped":true}"#,
        );
        let n = normalise(&body).unwrap();
        let v: Value = serde_json::from_slice(&n.bytes).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert!(v["id"].as_str().unwrap().parse::<Uuid>().is_ok());
        assert!(v.get("dropped").is_none());
        assert!(v["params"]["message"]["messageId"].is_string());
    }

    #[test]
    fn non_objects_are_invalid_json() {
        for body in [&b"[1,2]"[..], b"\"s\"", b"{", b""] {
            assert_eq!(
                normalise(&Bytes::copy_from_slice(body)).err(),
                Some(A2aError::BadRequest("invalid JSON".into()))
            );
        }
    }

    #[test]
    fn callers_from_the_header() {
        assert_eq!(Caller::from_header(None).unwrap(), Caller::Canvas);
        assert_eq!(Caller::from_header(Some("  ")).unwrap(), Caller::Canvas);
        assert_eq!(
            Caller::from_header(Some("system:scheduler")).unwrap(),
            Caller::System("system:scheduler".into())
        );
        let id = Uuid::new_v4();
        assert_eq!(
            Caller::from_header(Some(&id.to_string())).unwrap(),
            Caller::Workspace(id)
        );
        assert!(Caller::from_header(Some("nope")).is_err());
    }

    #[test]
    fn streaming_methods_of_both_protocol_versions() {
        for m in [
            "message/stream",
            "tasks/resubscribe",
            "SendStreamingMessage",
            "SubscribeToTask",
        ] {
            assert!(is_streaming_method(m));
        }
        assert!(!is_streaming_method("message/send"));
    }
}
