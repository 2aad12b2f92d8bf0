//! A small in-process metrics registry rendered in the Prometheus text
//! format at `/metrics`. Owned by one server instance (no global recorder),
//! so several servers in one test process never mix their numbers.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), f64>>,
    ws_active: AtomicI64,
}

impl Metrics {
    /// Add `by` to counter `name` with `labels`.
    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], by: f64) {
        let key = (
            name,
            labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        );
        if let Ok(mut map) = self.counters.lock() {
            *map.entry(key).or_insert(0.0) += by;
        }
    }

    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1.0);
    }

    pub fn ws_connected(&self) {
        self.ws_active.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ws_disconnected(&self) {
        self.ws_active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Current value of one counter series (for tests and `/admin` views).
    pub fn get(&self, name: &'static str, labels: &[(&'static str, &str)]) -> f64 {
        let key = (
            name,
            labels
                .iter()
                .map(|(k, v)| (*k, v.to_string()))
                .collect::<Labels>(),
        );
        self.counters
            .lock()
            .map(|m| m.get(&key).copied().unwrap_or(0.0))
            .unwrap_or(0.0)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE molecule_websocket_connections_active gauge");
        let _ = writeln!(
            out,
            "molecule_websocket_connections_active {}",
            self.ws_active.load(Ordering::Relaxed)
        );
        let Ok(map) = self.counters.lock() else {
            return out;
        };
        let mut last = "";
        for ((name, labels), value) in map.iter() {
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

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels_and_gauge() {
        let m = Metrics::default();
        m.inc(
            "molecule_http_requests_total",
            &[("method", "GET"), ("path", "/health"), ("status", "200")],
        );
        m.inc(
            "molecule_http_requests_total",
            &[("method", "GET"), ("path", "/health"), ("status", "200")],
        );
        m.ws_connected();
        let text = m.render();
        assert!(
            text.contains(
                "molecule_http_requests_total{method=\"GET\",path=\"/health\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("molecule_websocket_connections_active 1"),
            "{text}"
        );
        assert_eq!(
            m.get(
                "molecule_http_requests_total",
                &[("method", "GET"), ("path", "/health"), ("status", "200")]
            ),
            2.0
        );
    }
}
