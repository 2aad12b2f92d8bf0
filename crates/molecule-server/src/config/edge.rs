//! Settings of the edge: connection caps and timeouts
//! ([`ConnectionLimits`](super::ConnectionLimits)). Validation only; the
//! accept loop (`crate::listener`) uses them.

use super::ConnectionLimits;
use super::raw::{RawConfig, seconds};

impl RawConfig {
    /// Defaults: a head arrives in one packet from any real client, so 10 s
    /// is generous; 60 s lets the 1 MiB body cap arrive at ~17 KiB/s; 120 s
    /// idle outlives the usual client pool idle time (90 s in reqwest and
    /// Go), so clients close first and never reuse a connection the server
    /// is closing, and a 30 s heartbeat keeps an agent's connection warm.
    /// 10 000 connections stay under common descriptor limits; 1 000 per
    /// address leaves room for every local agent (all on 127.0.0.1) while
    /// one address can take at most a tenth.
    pub(super) fn connection_limits(&self, problems: &mut Vec<String>) -> ConnectionLimits {
        let limits = ConnectionLimits {
            header_read_timeout: seconds(
                &self.header_timeout,
                "MOLECULE_HTTP_HEADER_TIMEOUT_SECONDS",
                10,
                problems,
            ),
            body_read_timeout: seconds(
                &self.body_timeout,
                "MOLECULE_HTTP_BODY_TIMEOUT_SECONDS",
                60,
                problems,
            ),
            idle_timeout: seconds(
                &self.idle_timeout,
                "MOLECULE_HTTP_IDLE_TIMEOUT_SECONDS",
                120,
                problems,
            ),
            max_connections: count(
                &self.max_connections,
                "MOLECULE_MAX_CONNECTIONS",
                10_000,
                problems,
            ),
            max_connections_per_ip: count(
                &self.max_connections_per_ip,
                "MOLECULE_MAX_CONNECTIONS_PER_IP",
                1_000,
                problems,
            ),
        };
        if limits.max_connections_per_ip > limits.max_connections {
            problems.push(format!(
                "MOLECULE_MAX_CONNECTIONS_PER_IP ({}) must not exceed MOLECULE_MAX_CONNECTIONS ({})",
                limits.max_connections_per_ip, limits.max_connections
            ));
        }
        limits
    }
}

/// A positive whole number (of connections).
fn count(raw: &Option<String>, name: &str, default: usize, problems: &mut Vec<String>) -> usize {
    match raw.as_deref().map(str::trim) {
        None => default,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                problems.push(format!("{name}={v:?} must be a positive integer"));
                default
            }
        },
    }
}
