//! A small in-process metrics registry rendered in the Prometheus text
//! format at `/metrics`. Owned by one server instance (no global recorder),
//! so several servers in one test process never mix their numbers.
//!
//! Every label value comes from a closed set, so no client can add series
//! (each one lives until the process ends): counter labels are
//! `&'static str`, request methods outside the standard ones count as
//! `other`, and request paths are route templates or `unmatched`.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::Method;

type Labels = Vec<(&'static str, &'static str)>;

#[derive(Default)]
pub struct Metrics {
    /// Counters by a hash of (name, labels): incrementing an existing series
    /// allocates nothing.
    counters: Mutex<HashMap<u64, (&'static str, Labels, f64)>>,
    /// HTTP requests by a hash of (method, route, status): the hot path
    /// allocates only the first time a series appears.
    requests: Mutex<HashMap<u64, RequestSeries>>,
    ws_active: AtomicI64,
    /// Open client connections (`crate::listener`).
    connections_open: AtomicI64,
}

/// A value kept outside the registry, rendered without labels.
pub struct Sample {
    pub name: &'static str,
    /// `counter` or `gauge`.
    pub kind: &'static str,
    pub value: f64,
}

/// A rendered request metric: its name and how to read it from a series.
type Column = (&'static str, fn(&RequestSeries) -> f64);

struct RequestSeries {
    method: &'static str,
    route: String,
    status: u16,
    count: u64,
    seconds: f64,
}

impl Metrics {
    /// Add `by` to counter `name` with `labels`.
    pub fn add(&self, name: &'static str, labels: &[(&'static str, &'static str)], by: f64) {
        let key = series_key(name, labels);
        if let Ok(mut map) = self.counters.lock() {
            map.entry(key)
                .or_insert_with(|| (name, labels.to_vec(), 0.0))
                .2 += by;
        }
    }

    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &'static str)]) {
        self.add(name, labels, 1.0);
    }

    /// Count one HTTP request and its duration. `route` must be a route
    /// template or `unmatched`, never the request's path.
    pub fn observe_request(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (method, route, status).hash(&mut h);
        let key = h.finish();
        if let Ok(mut map) = self.requests.lock() {
            let series = map.entry(key).or_insert_with(|| RequestSeries {
                method,
                route: route.to_string(),
                status,
                count: 0,
                seconds: 0.0,
            });
            series.count += 1;
            series.seconds += seconds;
        }
    }

    pub fn ws_connected(&self) {
        self.ws_active.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ws_disconnected(&self) {
        self.ws_active.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Current value of one counter series (for tests and `/admin` views).
    pub fn get(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> f64 {
        let key = series_key(name, labels);
        self.counters
            .lock()
            .map(|m| m.get(&key).map(|e| e.2).unwrap_or(0.0))
            .unwrap_or(0.0)
    }

    /// The Prometheus text of every series, then of `sampled`: values
    /// that live elsewhere and are read at render time.
    pub fn render(&self, sampled: &[Sample]) -> String {
        let mut out = String::new();
        let ws = Sample {
            name: "molecule_websocket_connections_active",
            kind: "gauge",
            value: self.ws_active.load(Ordering::Relaxed) as f64,
        };
        let connections = Sample {
            name: "molecule_http_connections_open",
            kind: "gauge",
            value: self.connections_open.load(Ordering::Relaxed) as f64,
        };
        for s in [&ws, &connections].into_iter().chain(sampled) {
            let _ = writeln!(out, "# TYPE {} {}\n{} {}", s.name, s.kind, s.name, s.value);
        }
        if let Ok(reqs) = self.requests.lock() {
            let mut rows: Vec<&RequestSeries> = reqs.values().collect();
            rows.sort_by(|a, b| {
                (&a.route, &a.method, a.status).cmp(&(&b.route, &b.method, b.status))
            });
            let columns: [Column; 2] = [
                ("molecule_http_requests_total", |r| r.count as f64),
                ("molecule_http_request_duration_seconds_total", |r| {
                    r.seconds
                }),
            ];
            for (name, pick) in columns {
                let _ = writeln!(out, "# TYPE {name} counter");
                for r in &rows {
                    let _ = writeln!(
                        out,
                        "{name}{{method=\"{}\",path=\"{}\",status=\"{}\"}} {}",
                        r.method,
                        escape(&r.route),
                        r.status,
                        pick(r)
                    );
                }
            }
        }
        let Ok(map) = self.counters.lock() else {
            return out;
        };
        let mut series: Vec<&(&'static str, Labels, f64)> = map.values().collect();
        series.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut last = "";
        for (name, labels, value) in series {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let rendered: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            if rendered.is_empty() {
                let _ = writeln!(out, "{name} {value}");
            } else {
                let _ = writeln!(out, "{name}{{{}}} {value}", rendered.join(","));
            }
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

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn series_key(name: &str, labels: &[(&'static str, &str)]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    for (k, v) in labels {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels_and_gauge() {
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
        let text = m.render(&[]);
        for want in [
            "molecule_http_requests_total{method=\"GET\",path=\"/health\",status=\"200\"} 2",
            "molecule_http_request_duration_seconds_total{method=\"GET\",path=\"/health\",status=\"200\"} 0.75",
            "molecule_http_requests_total{method=\"POST\",path=\"/workspaces\",status=\"429\"} 1",
            "molecule_heartbeats_total 2",
            "molecule_restart_decisions_total{decision=\"restart\"} 1",
            "molecule_websocket_connections_active 1",
            "molecule_http_requests_total{method=\"other\",path=\"unmatched\",status=\"404\"} 3",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert_eq!(m.get("molecule_heartbeats_total", &[]), 2.0);
    }
}
