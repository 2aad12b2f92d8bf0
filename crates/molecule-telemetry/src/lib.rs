//! Traces for Molecule (issue 15, item 5; no reference platform has them).
//!
//! - [`SpanContext`]: the W3C Trace Context (`traceparent`) a request
//!   carries, parsed and written.
//! - [`Telemetry`]: starts [`Span`]s. Configured by the standard `OTEL_*`
//!   variables ([`Settings::from_env`]); with none set it exports nothing,
//!   and a span then only carries its parent's context along, so a
//!   `traceparent` that came in still goes out unchanged.
//! - Finished spans are batched and sent as OTLP/HTTP JSON
//!   (`POST …/v1/traces`) by a background task, through a [`Transport`]
//!   the program supplies (the platform's own HTTP client, the agent's), so
//!   this crate brings no HTTP stack of its own. A full queue drops spans
//!   (counted in the log), never blocks the caller.

mod export;
mod settings;

pub use export::Transport;
pub use settings::{ENV_NAMES, Settings};

use rand::RngCore;
use std::sync::Arc;
use std::time::SystemTime;

/// The `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";

/// A span's identity as W3C Trace Context carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2
        || !s
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

impl SpanContext {
    /// `00-<trace id>-<span id>-<flags>` (W3C Trace Context §3.2). Later
    /// versions are read by their first four fields; version `ff`, all-zero
    /// ids and malformed values are `None`.
    pub fn parse(traceparent: &str) -> Option<SpanContext> {
        let mut parts = traceparent.trim().split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || unhex::<1>(version).is_none() {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id = unhex::<16>(trace)?;
        let span_id = unhex::<8>(span)?;
        let flags = unhex::<1>(flags)?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(SpanContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` value.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }
}

/// OTLP span kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// A finished span, as exported.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub context: SpanContext,
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(String, String)>,
    pub error: Option<String>,
}

/// Starts spans; cheap to clone. [`Telemetry::disabled`] exports nothing.
#[derive(Clone, Default)]
pub struct Telemetry {
    exporter: Option<Arc<export::Exporter>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("enabled", &self.exporter.is_some())
            .finish()
    }
}

impl Telemetry {
    pub fn disabled() -> Telemetry {
        Telemetry::default()
    }

    /// Exports to what `settings` name through `transport`; must be called
    /// within a tokio runtime (it starts the exporting task).
    pub fn new(settings: Settings, transport: Arc<dyn Transport>) -> Telemetry {
        Telemetry {
            exporter: Some(Arc::new(export::Exporter::start(settings, transport))),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.exporter.is_some()
    }

    /// A new span under `parent` (a new trace without one). Disabled, it is
    /// a no-op whose context is the parent's.
    pub fn start(&self, name: &str, kind: SpanKind, parent: Option<SpanContext>) -> Span {
        let Some(exporter) = &self.exporter else {
            return Span {
                exporter: None,
                context: parent,
                parent: None,
                name: String::new(),
                kind,
                start: SystemTime::now(),
                attributes: Vec::new(),
                error: None,
            };
        };
        let mut rng = rand::rng();
        let mut span_id = [0u8; 8];
        while span_id == [0; 8] {
            rng.fill_bytes(&mut span_id);
        }
        let (trace_id, sampled) = match parent {
            Some(p) => (p.trace_id, p.sampled),
            None => {
                let mut id = [0u8; 16];
                while id == [0; 16] {
                    rng.fill_bytes(&mut id);
                }
                (id, true)
            }
        };
        Span {
            exporter: Some(exporter.clone()),
            context: Some(SpanContext {
                trace_id,
                span_id,
                sampled,
            }),
            parent: parent.map(|p| p.span_id),
            name: name.to_string(),
            kind,
            start: SystemTime::now(),
            attributes: Vec::new(),
            error: None,
        }
    }
}

/// A span being recorded; exported when it ends (on [`Span::end`] or drop).
pub struct Span {
    exporter: Option<Arc<export::Exporter>>,
    context: Option<SpanContext>,
    parent: Option<[u8; 8]>,
    name: String,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<(String, String)>,
    error: Option<String>,
}

impl Span {
    /// What a request made inside this span carries (`traceparent`).
    pub fn context(&self) -> Option<SpanContext> {
        self.context
    }

    pub fn set_attribute(&mut self, key: &str, value: impl ToString) {
        if self.exporter.is_some() {
            self.attributes.push((key.to_string(), value.to_string()));
        }
    }

    /// Marks the span failed with `message`.
    pub fn set_error(&mut self, message: impl ToString) {
        if self.exporter.is_some() {
            self.error = Some(message.to_string());
        }
    }

    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        let (Some(exporter), Some(context)) = (self.exporter.take(), self.context) else {
            return;
        };
        if !context.sampled {
            return;
        }
        exporter.push(Finished {
            context,
            parent: self.parent,
            name: std::mem::take(&mut self.name),
            kind: self.kind,
            start: self.start,
            end: SystemTime::now(),
            attributes: std::mem::take(&mut self.attributes),
            error: self.error.take(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_refuses_what_the_spec_refuses() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = SpanContext::parse(tp).expect("valid");
        assert!(ctx.sampled);
        assert_eq!(ctx.traceparent(), tp);
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra";
        assert!(SpanContext::parse(later).is_some_and(|c| !c.sampled));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(SpanContext::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_disabled_span_carries_its_parent_and_an_enabled_one_is_its_child() {
        let parent = SpanContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let off = Telemetry::disabled().start("x", SpanKind::Server, parent);
        assert_eq!(off.context(), parent);
        assert_eq!(
            Telemetry::disabled()
                .start("x", SpanKind::Server, None)
                .context(),
            None
        );
    }
}
