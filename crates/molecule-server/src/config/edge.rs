//! Settings of the edge: connection caps and timeouts
//! ([`ConnectionLimits`](super::ConnectionLimits)) and the `Host` names
//! development mode accepts ([`HostName`]). Validation only; the accept loop
//! (`crate::listener`) and the Host check (`crate::http::host`) use them.

use std::fmt;
use std::net::IpAddr;

use super::ConnectionLimits;
use super::numbers::seconds;
use super::raw::RawConfig;

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

/// `MOLECULE_ALLOWED_HOSTS`: comma-separated host names or addresses, each
/// optionally with a port.
pub(super) fn allowed_hosts(list: Option<&str>, problems: &mut Vec<String>) -> Vec<HostName> {
    let mut hosts = Vec::new();
    for entry in list
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        match HostName::parse(entry) {
            Some(h) => hosts.push(h),
            None => problems.push(format!(
                "MOLECULE_ALLOWED_HOSTS entry {entry:?} must be a host name or address, \
                 optionally with :port (no scheme, no path)"
            )),
        }
    }
    hosts
}

/// A `Host` header value (or an allowed-hosts entry): a lower-case name
/// without a trailing dot, or an IP address, and an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName {
    pub host: Host,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl HostName {
    /// `name`, `name:port`, `1.2.3.4[:port]`, `[v6][:port]`; `None` for
    /// anything else (a path, a scheme, user info, an empty name).
    pub fn parse(raw: &str) -> Option<HostName> {
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (v6, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (Host::Ip(IpAddr::V6(v6.parse().ok()?)), port)
        } else {
            let (name, port) = match raw.rsplit_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (raw, None),
            };
            let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
            if !valid {
                return None;
            }
            match name.parse::<std::net::Ipv4Addr>() {
                Ok(ip) => (Host::Ip(IpAddr::V4(ip)), port),
                Err(_) => (Host::Name(name), port),
            }
        };
        let port = match port {
            None => None,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse().ok()?)
            }
            Some(_) => return None,
        };
        Some(HostName { host, port })
    }

    /// An allowed-hosts entry matches `other` when the hosts are equal and
    /// its port, if it names one, is `other`'s.
    pub fn admits(&self, other: &HostName) -> bool {
        self.host == other.host && (self.port.is_none() || self.port == other.port)
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            Host::Ip(ip) => write!(f, "{ip}")?,
            Host::Name(n) => f.write_str(n)?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_parse_strictly() {
        let cases: &[(&str, Option<&str>)] = &[
            ("localhost", Some("localhost")),
            ("LocalHost:8080", Some("localhost:8080")),
            ("example.com.", Some("example.com")),
            ("127.0.0.1:80", Some("127.0.0.1:80")),
            ("[::1]:8080", Some("[::1]:8080")),
            ("[::1]", Some("[::1]")),
            ("", None),
            (":80", None),
            ("a:", None),
            ("a:b", None),
            ("a:99999", None),
            ("evil.example/x", None),
            ("http://x", None),
            ("user@host", None),
            ("[::1", None),
            ("[::1]x", None),
            ("[nope]:1", None),
        ];
        for (raw, want) in cases {
            let got = HostName::parse(raw).map(|h| h.to_string());
            assert_eq!(got.as_deref(), *want, "{raw:?}");
        }
    }

    #[test]
    fn an_entry_without_port_admits_any_port() {
        let entry = HostName::parse("molecule.test").unwrap();
        assert!(entry.admits(&HostName::parse("molecule.test:443").unwrap()));
        assert!(entry.admits(&HostName::parse("MOLECULE.test").unwrap()));
        assert!(!entry.admits(&HostName::parse("molecule.test.evil").unwrap()));
        let pinned = HostName::parse("molecule.test:8080").unwrap();
        assert!(!pinned.admits(&HostName::parse("molecule.test:80").unwrap()));
        assert!(!pinned.admits(&HostName::parse("molecule.test").unwrap()));
    }
}
