//! The A2A proxy core: who may call whom, where the agent is, forwarding
//! with deadlines, error mapping and the activity it leaves behind. The
//! HTTP handler (`POST /workspaces/:id/a2a`) and internal callers (the
//! scheduler, delegation) all go through [`App::proxy`], so they share one
//! behaviour.
//!
//! Hot path: no database access once the target is cached (tokens,
//! hierarchy and target are all in memory); the request body is forwarded
//! as received unless it had to be normalised; the upstream exchange is
//! polled inline and spawned only if the client goes away, so a disconnect
//! does not cancel a task the agent is working on; activity rows and events
//! are produced after the answer has been handed to the client.
//!
//! Files: `types.rs` (callers, requests, answers, errors), `envelope.rs`
//! (JSON-RPC normalisation, streaming methods, A2A headers, logged bodies),
//! `exchange.rs` (one upstream exchange: capped read, SSE relay, detach on
//! drop, the activity row and events).

use axum::http::HeaderValue;
use bytes::{Bytes, BytesMut};
use molecule_types::{Runtime, WorkspaceStatus};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use uuid::Uuid;

pub mod api;
pub mod card;
mod conformance;
mod endpoint;
mod envelope;
mod exchange;
pub mod fetch;
mod json_check;
pub mod otlp;
pub mod traces;
pub mod transcript;
mod types;
mod upstream;

pub use conformance::Probes;
use endpoint::Endpoint;
pub use endpoint::UrlOrigin;
pub use envelope::{a2a_headers_of, is_streaming_method};
use envelope::{loggable, normalise};
use exchange::{DetachOnDrop, Exchange, Outcome, stream_through};
pub use types::{A2aError, A2aReply, A2aRoute, Caller, ProxyBody, ProxyRequest, ProxyResponse};
pub use upstream::Upstream;
use upstream::{Failure, SendError, read_capped};

use super::App;
use super::auth::Credentials;
use crate::error::AppError;

/// Largest request body the proxy forwards.
pub const MAX_REQUEST_BODY: usize = 1 << 20;
/// Largest unary agent answer the proxy passes back.
pub const MAX_RESPONSE_BODY: usize = 10 << 20;
/// Bodies larger than this are not copied into activity rows (the cap
/// every activity body has, `activity::fields`).
pub const MAX_LOGGED_BODY: usize = super::activity::fields::MAX_BODY_BYTES;
/// Default deadline of a canvas (operator) call.
pub const CANVAS_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Default deadline of a call from a workspace or a platform component.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long a resolved target stays cached without a status write.
const TARGET_TTL: Duration = Duration::from_secs(5);
/// `Retry-After` of a busy answer, seconds.
pub const BUSY_RETRY_AFTER: u64 = 30;
/// Who is calling: a workspace id or a system caller (`system:…`,
/// `webhook:…`); absent for the canvas.
pub const X_WORKSPACE_ID: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-workspace-id");
/// W3C Trace Context: sent to agents, and back to the caller.
const TRACEPARENT_HEADER: axum::http::HeaderName =
    axum::http::HeaderName::from_static(molecule_telemetry::TRACEPARENT);
/// Headers of the A2A protocol passed through both ways, untouched.
pub const A2A_HEADERS: [axum::http::HeaderName; 2] = [
    axum::http::HeaderName::from_static("a2a-version"),
    axum::http::HeaderName::from_static("a2a-extensions"),
];

/// What the proxy remembers about a target between status writes.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    /// `url` parsed once, not per call, with who chose it; `None` when it
    /// is not an `http(s)://` URL.
    endpoint: Option<Endpoint>,
    name: String,
    runtime: Runtime,
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
    pub fn invalidate_all(&self) {
        if let Ok(mut m) = self.inner.lock() {
            m.clear();
        }
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
        let url = row.url.unwrap_or_default();
        let origin = UrlOrigin::of(&row.runtime, &url, self.provisioner.is_some());
        let t = Arc::new(Target {
            endpoint: Endpoint::parse(&url, origin),
            url,
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

    /// The proxy's gate for a request: who the caller is (its token;
    /// development from loopback keeps the reference's trust in loopback
    /// callers and self-calls) and whether the hierarchy lets it reach
    /// `target`.
    pub async fn auth_a2a(
        &self,
        caller: Caller,
        target: Uuid,
        creds: Credentials<'_>,
    ) -> Result<A2aRoute, A2aError> {
        let to_a2a = |e: AppError| match e {
            AppError::Unauthenticated(m) => A2aError::Unauthenticated(m),
            other => A2aError::Internal(other.to_string()),
        };
        match &caller {
            Caller::Canvas | Caller::System(_) => {
                // An operator (admin token) only; development trusts
                // loopback callers as the reference did.
                self.auth_admin(creds).map_err(to_a2a)?;
            }
            Caller::Workspace(id) => {
                // A workspace caller proves who it is (production: always,
                // calling itself included).
                let self_call_in_dev = self.dev_open(creds) && *id == target;
                if !self_call_in_dev {
                    self.auth_agent(*id, creds, "caller")
                        .await
                        .map_err(to_a2a)?;
                }
            }
        }
        self.a2a_internal(caller, target).await
    }

    /// The platform calling on an already authorised principal's behalf
    /// (delegation, schedules, restart context): no token is asked for,
    /// the hierarchy still applies.
    pub(in crate::app) async fn a2a_internal(
        &self,
        caller: Caller,
        target: Uuid,
    ) -> Result<A2aRoute, A2aError> {
        if let Caller::Workspace(id) = caller
            && id != target
            && !self.hierarchy.can_communicate(id, target).await
        {
            return Err(A2aError::AccessDenied);
        }
        Ok(A2aRoute::granted(caller, target))
    }

    /// One authorised call through the proxy: resolve, normalise, forward,
    /// map errors, record. See the module docs.
    pub async fn proxy(&self, req: ProxyRequest) -> Result<ProxyResponse, A2aError> {
        if req.body.len() > MAX_REQUEST_BODY {
            return Err(A2aError::TooLarge);
        }
        let (caller, target_id) = (req.route.caller().clone(), req.route.target());
        let target = self.resolve_target(target_id).await?;
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
            (false, None) if caller == Caller::Canvas => Some(CANVAS_TIMEOUT),
            (false, None) => Some(AGENT_TIMEOUT),
        };
        let Some(endpoint) = target.endpoint.clone() else {
            return Err(A2aError::Unreachable(format!(
                "invalid workspace URL {:?}",
                target.url
            )));
        };
        let mut span = self.telemetry.start(
            "a2a.proxy",
            molecule_telemetry::SpanKind::Server,
            req.trace_parent,
        );
        span.set_attribute("rpc.method", &n.method);
        span.set_attribute("molecule.workspace_id", target_id);
        span.set_attribute(
            "molecule.caller",
            caller.header_value().unwrap_or_else(|| "canvas".into()),
        );
        // The agent continues the trace: the proxy's span (or, with
        // telemetry off, the caller's own context) goes out unchanged.
        let traceparent = span
            .context()
            .and_then(|c| HeaderValue::from_str(&c.traceparent()).ok());
        let mut a2a_headers = req.a2a_headers;
        if let Some(tp) = &traceparent {
            a2a_headers.push((TRACEPARENT_HEADER, tp.clone()));
        }
        let upstream_req = upstream::post(
            &endpoint,
            n.bytes.clone(),
            caller.header_value(),
            &a2a_headers,
        );
        let deadline = deadline.map(|d| tokio::time::Instant::now() + d);
        let client = self.a2a_http.clone();
        let card_url = req
            .proxy_url
            .filter(|_| n.method == card::EXTENDED_CARD_METHOD);
        let exchange = Exchange {
            app: self.clone(),
            target: target_id,
            target_name: target.name.clone(),
            caller: caller.clone(),
            method: n.method,
            request: n.bytes,
        };
        let (tx, mut rx) = oneshot::channel();
        let external = target.runtime.is_external();
        // Detached: the agent's task runs to its end even when the client
        // goes away; the deadline still applies.
        let exchange = async move {
            let mut span = span;
            let started = Instant::now();
            let result = client.send(&endpoint, upstream_req, deadline).await;
            let (resp, mut lease) = match result {
                Ok(r) => r,
                Err(e) => {
                    span.set_error(e.to_string());
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
            let is_sse = resp
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if streaming && is_sse {
                stream_through(exchange, resp, lease, tx, started).await;
                return;
            }
            let status = resp.status().as_u16();
            span.set_attribute("http.response.status_code", status);
            if status >= 500 {
                span.set_error(format!("agent answered HTTP {status}"));
            }
            let mut a2a_headers = a2a_headers_of(resp.headers());
            // The caller learns the trace of its call.
            if let Some(tp) = traceparent {
                a2a_headers.push((TRACEPARENT_HEADER, tp));
            }
            match lease.drive(read_capped(resp, deadline)).await {
                Ok(body) => {
                    lease.release();
                    let body = match &card_url {
                        Some(url) => card::rewritten_answer(body, url),
                        None => body,
                    };
                    let duration = started.elapsed();
                    let response = exchange.wants_answer().then(|| loggable(&body)).flatten();
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

    /// Map a transport failure: an address the outbound policy refused →
    /// 502 naming the policy (nothing was sent, nothing to restart); a
    /// runtime that is gone → governed restart (503 restarting); a timeout
    /// or a dropped connection to a running agent → 503 busy; anything
    /// else → 502.
    async fn transport_error(&self, id: Uuid, external: bool, e: &SendError) -> A2aError {
        let failed = match e {
            SendError::Refused(refused) => {
                tracing::warn!(workspace_id = %id, reason = %refused, "a2a: agent URL refused by the outbound policy");
                return A2aError::Refused(refused.to_string());
            }
            SendError::Timeout => None,
            SendError::Failed(kind, chain) => Some((*kind, chain)),
        };
        if !external && self.reactive_check(id).await {
            self.forget_target(id);
            return A2aError::Restarting;
        }
        // A runtime that is (re)starting refuses connections until its
        // agent serves: that is "restarting" too, not a broken agent.
        if !external
            && matches!(failed, Some((Failure::Other, _)))
            && self.status_of(id).await == Some(WorkspaceStatus::Provisioning)
        {
            self.forget_target(id);
            return A2aError::Restarting;
        }
        // Whatever it was, the next call reads the target afresh.
        self.forget_target(id);
        match failed {
            None | Some((Failure::Dropped, _)) => A2aError::Busy,
            Some((Failure::Other, chain)) => A2aError::Unreachable(chain.clone()),
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
        trace: Option<molecule_telemetry::SpanContext>,
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
        self.a2a_call(target, caller, body, timeout, trace).await
    }

    /// Send a JSON-RPC request body through the proxy as a trusted internal
    /// caller and wait for the whole answer.
    pub async fn a2a_call(
        &self,
        target: Uuid,
        caller: Caller,
        body: Value,
        timeout: Duration,
        trace: Option<molecule_telemetry::SpanContext>,
    ) -> Result<A2aReply, A2aError> {
        let started = Instant::now();
        let resp = self
            .proxy(ProxyRequest {
                route: self.a2a_internal(caller, target).await?,
                body: Bytes::from(body.to_string()),
                a2a_headers: Vec::new(),
                timeout: Some(timeout),
                proxy_url: None,
                trace_parent: trace,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
