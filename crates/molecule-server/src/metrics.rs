//! The server's metrics, on `prometheus-client`, rendered at `/metrics` in
//! the Prometheus text format (0.0.4). One registry per server instance (no
//! global recorder), so several servers in one test process never mix their
//! numbers.
//!
//! Every label value comes from a closed set, so no client can add series
//! (each one lives until the process ends): counter labels are
//! `&'static str`, request methods outside the standard ones count as
//! `other`, and request paths are route templates or `unmatched`.
//! Series are keyed by their full label set (never by a hash of it).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, RwLock};

use axum::http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;
type Counters = Family<Labels, Counter<f64, AtomicU64>>;

/// Labels of one HTTP request series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    path: String,
    status: u16,
}

/// Request latencies, 0.5 ms to ~65 s (the A2A proxy and heartbeats
/// included: they are routes like any other).
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    /// Counter families by their full name (`…_total`), registered the
    /// first time they are counted.
    counters: Mutex<HashMap<&'static str, Counters>>,
    /// Values kept elsewhere and set at render time, by name.
    sampled: Mutex<HashMap<&'static str, Sampled>>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    /// The two metrics of each request series, found without allocating:
    /// by a hash of (method, route, status), then compared in full (a
    /// hash collision never merges two series).
    request_handles: RwLock<HashMap<u64, Vec<RequestHandles>>>,
    ws_active: Gauge,
    connections_open: Gauge,
}

struct RequestHandles {
    labels: RequestLabels,
    count: Counter,
    latency: Histogram,
}

enum Sampled {
    Counter(Counter),
    Gauge(Gauge),
}

/// A value kept outside the registry, rendered without labels.
pub struct Sample {
    pub name: &'static str,
    /// `counter` or `gauge`.
    pub kind: &'static str,
    pub value: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let ws_active = Gauge::default();
        let connections_open = Gauge::default();
        registry.register(
            "molecule_http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "molecule_http_request_duration_seconds",
            "HTTP request latency until the response head, by method, route template and status",
            latency.clone(),
        );
        registry.register(
            "molecule_websocket_connections_active",
            "open /ws connections",
            ws_active.clone(),
        );
        registry.register(
            "molecule_http_connections_open",
            "open client connections",
            connections_open.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            counters: Mutex::default(),
            sampled: Mutex::default(),
            requests,
            latency,
            request_handles: RwLock::default(),
            ws_active,
            connections_open,
        }
    }
}

/// A metric name without the `_total` the encoder adds to counters.
fn base_name(name: &'static str) -> &'static str {
    name.strip_suffix("_total").unwrap_or(name)
}

impl Metrics {
    /// The family of counter `name`, registered on first use.
    fn counter_family(&self, name: &'static str) -> Option<Counters> {
        let mut counters = self.counters.lock().ok()?;
        if let Some(f) = counters.get(name) {
            return Some(f.clone());
        }
        let family = Counters::default();
        if let Ok(mut registry) = self.registry.lock() {
            registry.register(base_name(name), name, family.clone());
        }
        counters.insert(name, family.clone());
        Some(family)
    }

    /// Add `by` to counter `name` with `labels`.
    pub fn add(&self, name: &'static str, labels: &[(&'static str, &'static str)], by: f64) {
        if let Some(family) = self.counter_family(name) {
            family.get_or_create(&labels.to_vec()).inc_by(by);
        }
    }

    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &'static str)]) {
        self.add(name, labels, 1.0);
    }

    /// Count one HTTP request and its latency. `route` must be a route
    /// template or `unmatched`, never the request's path.
    pub fn observe_request(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        let key = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (method, route, status).hash(&mut h);
            h.finish()
        };
        let same = |r: &RequestHandles| {
            r.labels.method == method && r.labels.path == route && r.labels.status == status
        };
        if let Ok(handles) = self.request_handles.read()
            && let Some(r) = handles.get(&key).and_then(|v| v.iter().find(|r| same(r)))
        {
            r.count.inc();
            r.latency.observe(seconds);
            return;
        }
        let labels = RequestLabels {
            method,
            path: route.to_string(),
            status,
        };
        let r = RequestHandles {
            count: self.requests.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
            labels,
        };
        r.count.inc();
        r.latency.observe(seconds);
        if let Ok(mut handles) = self.request_handles.write() {
            let bucket = handles.entry(key).or_default();
            if !bucket.iter().any(same) {
                bucket.push(r);
            }
        }
    }

    pub fn ws_connected(&self) {
        self.ws_active.inc();
    }

    pub fn ws_disconnected(&self) {
        self.ws_active.dec();
    }

    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }

    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// Current value of one counter series (for tests and `/admin` views).
    pub fn get(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> f64 {
        self.counter_family(name)
            .map(|f| f.get_or_create(&labels.to_vec()).get())
            .unwrap_or(0.0)
    }

    /// Set a sampled value (registering it on first use).
    fn set_sample(&self, s: &Sample) {
        let Ok(mut sampled) = self.sampled.lock() else {
            return;
        };
        let entry = sampled.entry(s.name).or_insert_with(|| {
            let metric = if s.kind == "counter" {
                Sampled::Counter(Counter::default())
            } else {
                Sampled::Gauge(Gauge::default())
            };
            if let Ok(mut registry) = self.registry.lock() {
                match &metric {
                    Sampled::Counter(c) => registry.register(base_name(s.name), s.name, c.clone()),
                    Sampled::Gauge(g) => registry.register(s.name, s.name, g.clone()),
                }
            }
            metric
        });
        match entry {
            Sampled::Counter(c) => {
                c.inner()
                    .store(s.value as u64, std::sync::atomic::Ordering::Relaxed);
            }
            Sampled::Gauge(g) => {
                g.set(s.value as i64);
            }
        }
    }

    /// The Prometheus text of every series, after setting `sampled`: values
    /// that live elsewhere and are read at render time.
    pub fn render(&self, sampled: &[Sample]) -> String {
        for s in sampled {
            self.set_sample(s);
        }
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock()
            && let Err(e) =
                prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        {
            tracing::warn!(error = %e, "metrics could not be rendered");
        }
        out
    }
}

/// The method label: one of the standard methods, else `other` (a client
/// may send any token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels_gauges_and_latency_histograms() {
        let m = Metrics::default();
        m.observe_request(&Method::GET, "/health", 200, 0.5);
        m.observe_request(&Method::GET, "/health", 200, 0.25);
        m.observe_request(&Method::POST, "/workspaces", 429, 0.0);
        for custom in ["BREW", "M1", "get"] {
            let custom = Method::from_bytes(custom.as_bytes()).unwrap();
            m.observe_request(&custom, "unmatched", 404, 0.0);
        }
        m.inc("molecule_heartbeats_total", &[]);
        m.inc("molecule_heartbeats_total", &[]);
        m.inc(
            "molecule_restart_decisions_total",
            &[("decision", "restart")],
        );
        m.ws_connected();
        let text = m.render(&[Sample {
            name: "molecule_activity_queue_max_bytes",
            kind: "gauge",
            value: 1048576.0,
        }]);
        for want in [
            "molecule_http_requests_total{method=\"GET\",path=\"/health\",status=\"200\"} 2",
            "molecule_http_request_duration_seconds_sum{method=\"GET\",path=\"/health\",status=\"200\"} 0.75",
            "molecule_http_request_duration_seconds_count{method=\"GET\",path=\"/health\",status=\"200\"} 2",
            "molecule_http_requests_total{method=\"POST\",path=\"/workspaces\",status=\"429\"} 1",
            "molecule_heartbeats_total 2",
            "molecule_restart_decisions_total{decision=\"restart\"} 1",
            "molecule_websocket_connections_active 1",
            "molecule_http_requests_total{method=\"other\",path=\"unmatched\",status=\"404\"} 3",
            "molecule_activity_queue_max_bytes 1048576",
            "# TYPE molecule_http_request_duration_seconds histogram",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert_eq!(m.get("molecule_heartbeats_total", &[]), 2.0);
        assert_eq!(
            m.get("molecule_restart_decisions_total", &[("decision", "fail")]),
            0.0
        );
    }

    #[test]
    fn series_with_different_labels_never_merge() {
        let m = Metrics::default();
        for (i, decision) in ["restart", "skip", "fail", "breaker"].iter().enumerate() {
            for _ in 0..=i {
                m.inc(
                    "molecule_restart_decisions_total",
                    &[("decision", decision)],
                );
            }
        }
        for (i, decision) in ["restart", "skip", "fail", "breaker"].iter().enumerate() {
            let got = m.get(
                "molecule_restart_decisions_total",
                &[("decision", decision)],
            );
            assert_eq!(got, (i + 1) as f64, "{decision}");
        }
    }
}
