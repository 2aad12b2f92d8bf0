//! One upstream exchange of the proxy: reading the answer within its cap,
//! relaying a stream, detaching from a client that went away, and the
//! activity row and events it leaves.

use axum::http::{Response, header};
use bytes::Bytes;
use hyper::body::Incoming;
use molecule_store::NewActivity;
use molecule_types::{ActivityType, Event, EventType};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::envelope::loggable;
use super::upstream::{Lease, next_chunk};
use super::{A2aError, Caller, ProxyBody, ProxyResponse, a2a_headers_of};
use crate::app::App;

/// What the exchange task learned, for the activity row.
pub(super) struct Outcome {
    pub(super) status: Option<u16>,
    /// JSON text.
    pub(super) response: Option<String>,
    pub(super) error: Option<String>,
    pub(super) duration: Duration,
}

/// Everything the exchange task needs to record what happened.
pub(super) struct Exchange {
    pub(super) app: App,
    pub(super) target: Uuid,
    pub(super) target_name: String,
    pub(super) caller: Caller,
    pub(super) method: String,
    /// The request body as forwarded; copied into the activity row only
    /// when one is written.
    pub(super) request: Bytes,
}

impl Exchange {
    /// A canvas (operator) call while someone watches the event stream:
    /// its answer goes out as `A2A_RESPONSE`.
    fn canvas_watched(&self) -> bool {
        self.caller == Caller::Canvas && self.app.events.has_subscribers()
    }

    /// Whether anything will read the answer's body: the activity row, or
    /// an operator watching a canvas call.
    pub(super) fn wants_answer(&self) -> bool {
        self.app.config.a2a_activity || self.canvas_watched()
    }

    pub(super) fn record(self, o: Outcome) {
        let ok = o.error.is_none() && o.status.is_some_and(|s| s < 400);
        let outcome = match (ok, &o.error) {
            (true, _) => "ok",
            (false, None) => "agent_error",
            (false, Some(_)) => "transport_error",
        };
        self.app
            .metrics
            .inc("molecule_a2a_requests_total", &[("outcome", outcome)]);
        let canvas_answer = ok && self.canvas_watched();
        if !self.app.config.a2a_activity && !canvas_answer {
            return;
        }
        let summary = match &o.error {
            None => format!("{} → {}", self.method, self.target_name),
            Some(e) => format!("A2A request to {} failed: {e}", self.target_name),
        };
        let mut row = NewActivity::new(self.target, ActivityType::A2aReceive);
        match &self.caller {
            Caller::Canvas => {}
            Caller::Workspace(id) => row.source_id = Some(*id),
            Caller::System(s) => row.source_label = Some(s.clone()),
        }
        row.target_id = Some(self.target);
        row.method = Some(self.method.clone());
        row.summary = Some(summary);
        row.request_raw = loggable(&self.request);
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
    }
}

/// Holds a future polled inline; if it has not finished when this is
/// dropped, the rest of it is spawned so it still runs to its end.
pub(super) struct DetachOnDrop(
    pub(super) Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
);

impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        if let Some(fut) = self.0.take() {
            tokio::spawn(fut);
        }
    }
}

pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Pass an SSE answer through chunk by chunk. If the client goes away the
/// agent's stream is still read to its end (so its task is not cancelled)
/// and the activity row is written when it ends.
pub(super) async fn stream_through(
    exchange: Exchange,
    resp: Response<Incoming>,
    mut lease: Lease,
    tx: oneshot::Sender<Result<ProxyResponse, A2aError>>,
    started: Instant,
) {
    let status = resp.status().as_u16();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let a2a_headers = a2a_headers_of(resp.headers());
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
    let mut body = resp.into_body();
    let relay = async {
        loop {
            match next_chunk(&mut body).await {
                Some(Ok(chunk)) => {
                    events += chunk.windows(2).filter(|w| w == b"\n\n").count();
                    if !client_gone && chunks_tx.send(chunk).await.is_err() {
                        client_gone = true;
                    }
                }
                None => break,
                Some(Err(e)) => {
                    error = Some(format!("stream interrupted: {e}"));
                    break;
                }
            }
        }
    };
    lease.drive(relay).await;
    if error.is_none() {
        lease.release();
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
