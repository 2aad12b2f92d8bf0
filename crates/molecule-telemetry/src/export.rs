//! The batching exporter: finished spans go into a bounded queue; one task
//! sends them as OTLP/HTTP JSON every `schedule_delay` or when a batch is
//! full, and once more when the last [`crate::Telemetry`] is dropped.

use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

use crate::{Finished, Settings, hex};

/// How the exporter sends a batch: the program's HTTP client.
#[async_trait]
pub trait Transport: Send + Sync {
    /// POSTs `body` (`application/json`) to `url` with `headers`; the
    /// answer's status.
    async fn post_json(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<u16, String>;
}

pub(crate) struct Exporter {
    queue: mpsc::Sender<Finished>,
    dropped: AtomicU64,
}

impl Exporter {
    pub(crate) fn start(settings: Settings, transport: Arc<dyn Transport>) -> Exporter {
        let (queue, spans) = mpsc::channel(settings.max_queue);
        tokio::spawn(run(settings, transport, spans));
        Exporter {
            queue,
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn push(&self, span: Finished) {
        if self.queue.try_send(span).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(1000) {
                tracing::warn!(dropped = n, "trace export queue full; spans dropped");
            }
        }
    }
}

async fn run(
    settings: Settings,
    transport: Arc<dyn Transport>,
    mut spans: mpsc::Receiver<Finished>,
) {
    let mut batch = Vec::new();
    let mut tick = tokio::time::interval(settings.schedule_delay);
    loop {
        tokio::select! {
            span = spans.recv() => match span {
                Some(span) => {
                    batch.push(span);
                    if batch.len() >= settings.max_batch {
                        send(&settings, transport.as_ref(), &mut batch).await;
                    }
                }
                None => {
                    send(&settings, transport.as_ref(), &mut batch).await;
                    return;
                }
            },
            _ = tick.tick() => send(&settings, transport.as_ref(), &mut batch).await,
        }
    }
}

async fn send(settings: &Settings, transport: &dyn Transport, batch: &mut Vec<Finished>) {
    if batch.is_empty() {
        return;
    }
    let body = encode(settings, batch).to_string().into_bytes();
    let n = batch.len();
    batch.clear();
    match transport
        .post_json(&settings.endpoint, &settings.headers, body)
        .await
    {
        Ok(status) if (200..300).contains(&status) => {}
        Ok(status) => {
            tracing::warn!(status, spans = n, endpoint = %settings.endpoint, "trace export refused");
        }
        Err(error) => {
            tracing::warn!(%error, spans = n, endpoint = %settings.endpoint, "trace export failed");
        }
    }
}

fn nanos(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string()
}

fn attribute(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

/// An OTLP `ExportTraceServiceRequest` in its JSON encoding (ids as hex).
pub(crate) fn encode(settings: &Settings, spans: &[Finished]) -> Value {
    let mut resource = vec![attribute("service.name", &settings.service_name)];
    resource.extend(
        settings
            .resource
            .iter()
            .filter(|(k, _)| k != "service.name")
            .map(|(k, v)| attribute(k, v)),
    );
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut span = json!({
                "traceId": hex(&s.context.trace_id),
                "spanId": hex(&s.context.span_id),
                "name": s.name,
                "kind": s.kind as i32,
                "startTimeUnixNano": nanos(s.start),
                "endTimeUnixNano": nanos(s.end),
                "attributes": s.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
                "status": match &s.error {
                    Some(m) => json!({ "code": 2, "message": m }),
                    None => json!({ "code": 0 }),
                },
            });
            if let Some(parent) = s.parent {
                span["parentSpanId"] = json!(hex(&parent));
            }
            span
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": { "attributes": resource },
            "scopeSpans": [{
                "scope": { "name": "molecule", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans,
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SpanKind, Telemetry};
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, Value)>>);

    #[async_trait]
    impl Transport for Recorder {
        async fn post_json(
            &self,
            url: &str,
            _headers: &[(String, String)],
            body: Vec<u8>,
        ) -> Result<u16, String> {
            let v = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((url.to_string(), v));
            Ok(200)
        }
    }

    #[tokio::test]
    async fn spans_are_exported_as_otlp_json_with_their_parents() {
        let recorder = Arc::new(Recorder::default());
        let settings = Settings {
            endpoint: "http://collector/v1/traces".into(),
            headers: vec![],
            service_name: "test-svc".into(),
            resource: vec![],
            schedule_delay: Duration::from_millis(20),
            max_batch: 512,
            max_queue: 16,
        };
        let telemetry = Telemetry::new(settings, recorder.clone());
        let mut outer = telemetry.start("outer", SpanKind::Server, None);
        outer.set_attribute("workspace.id", "w1");
        let inner = telemetry.start("inner", SpanKind::Client, outer.context());
        let (outer_ctx, inner_ctx) = (outer.context(), inner.context());
        inner.end();
        outer.set_error("boom");
        outer.end();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let spans = loop {
            let sent: Vec<Value> = recorder
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .flat_map(|(_, v)| {
                    v["resourceSpans"][0]["scopeSpans"][0]["spans"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            if sent.len() == 2 {
                break sent;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "spans never exported"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let (outer_ctx, inner_ctx) = (
            outer_ctx.unwrap_or_else(|| unreachable!()),
            inner_ctx.unwrap_or_else(|| unreachable!()),
        );
        assert_eq!(outer_ctx.trace_id, inner_ctx.trace_id, "one trace");
        let inner = spans
            .iter()
            .find(|s| s["name"] == "inner")
            .cloned()
            .unwrap_or_default();
        let outer = spans
            .iter()
            .find(|s| s["name"] == "outer")
            .cloned()
            .unwrap_or_default();
        assert_eq!(inner["parentSpanId"], outer_ctx.span_id_hex());
        assert_eq!(inner["kind"], 3);
        assert!(outer.get("parentSpanId").is_none());
        assert_eq!(outer["status"]["code"], 2);
        assert_eq!(outer["attributes"][0]["value"]["stringValue"], "w1");
        assert_eq!(outer["traceId"], outer_ctx.trace_id_hex());
    }
}
