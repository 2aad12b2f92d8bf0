//! Which fault, if any, one request gets. The choice is a pure function of
//! the current [`FaultConfig`], what the proxy knows about the request
//! ([`RequestInfo`]) and a few random numbers ([`Rolls`]), so the selection
//! is unit-tested without sockets or a daemon.

use rand::Rng;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The transient failure shapes a loaded Docker daemon produced in the
/// incident. None of them says anything about the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transient {
    /// The daemon gets the request (and acts on it) but its answer is held
    /// back longer than the client's call deadline: a loaded daemon.
    DeadlineExceeded,
    /// The request is read, then the connection is closed without a byte
    /// of answer.
    Eof,
    /// The request is forwarded, the status line, the headers and half the
    /// body go back, then the connection is dropped.
    Reset,
    /// A 500 answer with body `{"message":"i/o timeout"}`.
    IoTimeout,
}

impl Transient {
    pub const ALL: [Transient; 4] = [
        Transient::DeadlineExceeded,
        Transient::Eof,
        Transient::Reset,
        Transient::IoTimeout,
    ];
}

/// What the proxy does instead of forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    Transient(Transient),
    /// A clean `404 {"message":"No such container: <name>"}` (container
    /// inspect only).
    NotFound,
}

/// What the proxy knows about a request when it chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub method: String,
    /// The path without the query string, e.g. `/v1.41/containers/ws-1/json`.
    pub path: String,
}

impl RequestInfo {
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
        }
    }

    /// The container name when this is a container inspect,
    /// `GET [/v<version>]/containers/<name>/json`. (`GET /containers/json`,
    /// the list, is not an inspect.)
    pub fn inspected_container(&self) -> Option<&str> {
        if self.method != "GET" {
            return None;
        }
        let mut parts: Vec<&str> = self.path.trim_start_matches('/').split('/').collect();
        if parts.first().is_some_and(|p| p.starts_with('v')) && parts.len() == 4 {
            parts.remove(0);
        }
        match parts.as_slice() {
            ["containers", name, "json"] if !name.is_empty() => Some(name),
            _ => None,
        }
    }
}

/// Decides which requests faults may apply to; `true` = eligible.
pub type Filter = Arc<dyn Fn(&RequestInfo) -> bool + Send + Sync>;

/// The fault settings, switchable while the proxy runs.
#[derive(Clone)]
pub struct FaultConfig {
    /// Share (0..=1) of eligible requests that get a transient fault.
    pub transient_share: f64,
    /// Share (0..=1) of eligible container inspects answered 404. Drawn
    /// before the transient share.
    pub not_found_share: f64,
    /// The transient shapes drawn from, uniformly.
    pub kinds: Vec<Transient>,
    /// How long [`Transient::DeadlineExceeded`] holds an answer back: make
    /// it longer than the client's call deadline.
    pub hold: Duration,
    /// Which requests are eligible; `None` = all of them.
    pub filter: Option<Filter>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            transient_share: 0.0,
            not_found_share: 0.0,
            kinds: Transient::ALL.to_vec(),
            hold: Duration::from_secs(3),
            filter: None,
        }
    }
}

impl fmt::Debug for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultConfig")
            .field("transient_share", &self.transient_share)
            .field("not_found_share", &self.not_found_share)
            .field("kinds", &self.kinds)
            .field("hold", &self.hold)
            .field("filter", &self.filter.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

/// The random numbers one choice consumes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rolls {
    /// In `[0, 1)`: compared with `not_found_share`.
    pub not_found: f64,
    /// In `[0, 1)`: compared with `transient_share`.
    pub transient: f64,
    /// Index into `kinds` (taken modulo its length).
    pub kind: usize,
}

impl Rolls {
    pub fn random() -> Self {
        let mut rng = rand::rng();
        Self {
            not_found: rng.random(),
            transient: rng.random(),
            kind: rng.random_range(0..usize::MAX),
        }
    }
}

/// The fault `req` gets under `config`, or `None` to forward it.
pub fn choose(config: &FaultConfig, req: &RequestInfo, rolls: &Rolls) -> Option<Fault> {
    if config.filter.as_ref().is_some_and(|f| !f(req)) {
        return None;
    }
    if req.inspected_container().is_some() && rolls.not_found < config.not_found_share {
        return Some(Fault::NotFound);
    }
    if config.kinds.is_empty() || rolls.transient >= config.transient_share {
        return None;
    }
    Some(Fault::Transient(
        config.kinds[rolls.kind % config.kinds.len()],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn inspect(name: &str) -> RequestInfo {
        RequestInfo::new("GET", format!("/v1.41/containers/{name}/json"))
    }

    fn rolls(not_found: f64, transient: f64, kind: usize) -> Rolls {
        Rolls {
            not_found,
            transient,
            kind,
        }
    }

    #[test]
    fn container_inspects_are_recognised() {
        let cases = [
            ("GET", "/v1.41/containers/ws-abc/json", Some("ws-abc")),
            ("GET", "/containers/ws-abc/json", Some("ws-abc")),
            ("GET", "/v1.41/containers/json", None), // the list
            ("GET", "/containers/json", None),
            ("POST", "/v1.41/containers/ws-abc/json", None),
            ("GET", "/v1.41/containers/ws-abc/logs", None),
            ("POST", "/v1.41/containers/ws-abc/start", None),
            ("GET", "/v1.41/images/molecule/agent/json", None),
            ("GET", "/_ping", None),
        ];
        for (method, path, want) in cases {
            assert_eq!(
                RequestInfo::new(method, path).inspected_container(),
                want,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn nothing_is_injected_by_default() {
        let config = FaultConfig::default();
        for req in [inspect("ws-1"), RequestInfo::new("POST", "/v1.41/x")] {
            assert_eq!(choose(&config, &req, &rolls(0.0, 0.0, 0)), None);
        }
    }

    #[test]
    fn shares_are_thresholds_on_the_rolls() {
        let config = FaultConfig {
            transient_share: 0.5,
            ..Default::default()
        };
        let req = RequestInfo::new("POST", "/v1.41/containers/create");
        let eof = Some(Fault::Transient(Transient::Eof));
        assert_eq!(choose(&config, &req, &rolls(0.0, 0.49, 1)), eof);
        assert_eq!(choose(&config, &req, &rolls(0.0, 0.5, 1)), None);
        assert_eq!(choose(&config, &req, &rolls(0.0, 0.99, 1)), None);
    }

    #[test]
    fn not_found_only_answers_container_inspects_and_comes_first() {
        let config = FaultConfig {
            not_found_share: 1.0,
            transient_share: 1.0,
            kinds: vec![Transient::IoTimeout],
            ..Default::default()
        };
        assert_eq!(
            choose(&config, &inspect("ws-1"), &rolls(0.3, 0.0, 0)),
            Some(Fault::NotFound)
        );
        // Anything else falls through to the transient draw.
        let start = RequestInfo::new("POST", "/v1.41/containers/ws-1/start");
        assert_eq!(
            choose(&config, &start, &rolls(0.3, 0.0, 0)),
            Some(Fault::Transient(Transient::IoTimeout))
        );
    }

    #[test]
    fn kinds_are_drawn_from_the_configured_list() {
        let config = FaultConfig {
            transient_share: 1.0,
            kinds: vec![Transient::Reset, Transient::DeadlineExceeded],
            ..Default::default()
        };
        let got: Vec<_> = (0..4)
            .map(|k| choose(&config, &inspect("ws-1"), &rolls(1.0, 0.0, k)))
            .collect();
        let reset = Some(Fault::Transient(Transient::Reset));
        let deadline = Some(Fault::Transient(Transient::DeadlineExceeded));
        assert_eq!(got, [reset, deadline, reset, deadline]);
        let none = FaultConfig {
            kinds: Vec::new(),
            ..config
        };
        assert_eq!(choose(&none, &inspect("ws-1"), &rolls(1.0, 0.0, 0)), None);
    }

    #[test]
    fn the_filter_decides_eligibility() {
        let config = FaultConfig {
            not_found_share: 1.0,
            filter: Some(Arc::new(|r: &RequestInfo| {
                r.inspected_container().is_some_and(|n| n != "ws-spared")
            })),
            ..Default::default()
        };
        let r = rolls(0.0, 0.0, 0);
        assert_eq!(choose(&config, &inspect("ws-1"), &r), Some(Fault::NotFound));
        assert_eq!(choose(&config, &inspect("ws-spared"), &r), None);
    }

    #[test]
    fn random_rolls_hit_the_share_and_every_kind() {
        let config = FaultConfig {
            transient_share: 0.5,
            ..Default::default()
        };
        let n = 20_000;
        let mut seen: HashMap<Fault, usize> = HashMap::new();
        for _ in 0..n {
            if let Some(f) = choose(&config, &inspect("ws-1"), &Rolls::random()) {
                *seen.entry(f).or_default() += 1;
            }
        }
        let total: usize = seen.values().sum();
        let share = total as f64 / n as f64;
        assert!((0.47..0.53).contains(&share), "share {share}");
        for kind in Transient::ALL {
            let k = seen.get(&Fault::Transient(kind)).copied().unwrap_or(0);
            assert!((2000..3000).contains(&k), "{kind:?}: {k} of {total}");
        }
        assert!(!seen.contains_key(&Fault::NotFound));
    }
}
