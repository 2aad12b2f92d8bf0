//! The `Host` check against DNS rebinding. A page on `evil.example` can
//! re-point its own name at 127.0.0.1; the browser then treats the platform
//! as same-origin with the page and sends `Host: evil.example`. Where the
//! check applies (development mode, whose admin routes are open, or any mode
//! with `MOLECULE_ALLOWED_HOSTS` set) a request must name the platform by a
//! loopback address, `localhost`, an allowed host, the agent listener's
//! address or `PLATFORM_URL`'s host, in its `Host` header and in an
//! absolute-form target. Requests without a `Host` (HTTP/1.0 tools) pass: a
//! browser always sends one.
//!
//! It deliberately does not authenticate anything: production relies on
//! its admin token, which a rebound page does not have.

use axum::http::{HeaderMap, Uri, header};
use std::net::IpAddr;

use crate::config::{Config, Host, HostName, Mode};

/// Which `Host` values the platform answers to.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    enforced: bool,
    allowed: Vec<HostName>,
}

/// The answer for a refused request, without echoing the name it used.
pub const REFUSED: &str = "host not allowed: this platform answers to loopback addresses, \
    localhost and MOLECULE_ALLOWED_HOSTS";

impl HostPolicy {
    /// `agent_ip`: the agent listener's address, which containers use as
    /// their platform host.
    pub fn new(config: &Config, agent_ip: Option<IpAddr>) -> Self {
        let mut allowed = config.allowed_hosts.clone();
        allowed.extend(agent_ip.map(|ip| HostName {
            host: Host::Ip(ip),
            port: None,
        }));
        let platform = config
            .platform_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().and_then(HostName::parse));
        allowed.extend(platform.map(|h| HostName { port: None, ..h }));
        Self {
            enforced: config.mode == Mode::Development || !config.allowed_hosts.is_empty(),
            allowed,
        }
    }

    /// Whether a request with these headers and target may be served.
    pub fn admits(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        if !self.enforced {
            return true;
        }
        let mut hosts = headers.get_all(header::HOST).iter();
        let from_header = match (hosts.next(), hosts.next()) {
            (None, _) => true,
            (Some(h), None) => h.to_str().is_ok_and(|h| self.admits_name(h)),
            // Two Host headers: which one a proxy or the browser meant is
            // unknowable, so neither is trusted.
            (Some(_), Some(_)) => false,
        };
        from_header && uri.authority().is_none_or(|a| self.admits_name(a.as_str()))
    }

    fn admits_name(&self, raw: &str) -> bool {
        let Some(name) = HostName::parse(raw) else {
            return false;
        };
        let local = match &name.host {
            Host::Ip(ip) => ip.to_canonical().is_loopback(),
            Host::Name(n) => n == "localhost",
        };
        local || self.allowed.iter().any(|a| a.admits(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn policy(mode: Mode, allowed: &[&str]) -> HostPolicy {
        let mut c = crate::config::RawConfig::default().validate().unwrap();
        c.mode = mode;
        c.allowed_hosts = allowed.iter().filter_map(|h| HostName::parse(h)).collect();
        c.platform_url = Some("http://platform.internal:8080".into());
        HostPolicy::new(&c, Some(IpAddr::from([172, 17, 0, 1])))
    }

    fn admits(p: &HostPolicy, hosts: &[&str], target: &str) -> bool {
        let mut h = HeaderMap::new();
        for v in hosts {
            h.append(header::HOST, HeaderValue::from_str(v).unwrap());
        }
        p.admits(&h, &target.parse().unwrap())
    }

    #[test]
    fn development_answers_only_local_and_configured_names() {
        let p = policy(Mode::Development, &["molecule.test"]);
        let table: &[(&[&str], &str, bool)] = &[
            (&["localhost:8080"], "/", true),
            (&["127.0.0.1"], "/", true),
            (&["127.200.0.9:1"], "/", true),
            (&["[::1]:8080"], "/", true),
            (&["[::ffff:127.0.0.1]"], "/", true),
            (&["molecule.test:9"], "/", true),
            (&["172.17.0.1:8080"], "/", true),
            (&["platform.internal:8080"], "/", true),
            (&[], "/", true),
            (&["evil.example"], "/", false),
            (&["localhost.evil.example"], "/", false),
            (&["127.0.0.1.nip.io"], "/", false),
            (&["10.0.0.1"], "/", false),
            (&["[::2]"], "/", false),
            (&["localhost", "evil.example"], "/", false),
            (&["local host"], "/", false),
            (&["localhost"], "http://evil.example/x", false),
            (&["localhost"], "http://localhost:1/x", true),
        ];
        for (hosts, target, want) in table {
            assert_eq!(admits(&p, hosts, target), *want, "{hosts:?} {target}");
        }
    }

    #[test]
    fn production_checks_only_when_hosts_are_configured() {
        assert!(admits(
            &policy(Mode::Production, &[]),
            &["evil.example"],
            "/"
        ));
        let p = policy(Mode::Production, &["molecule.example.com"]);
        assert!(!admits(&p, &["evil.example"], "/"));
        assert!(admits(&p, &["molecule.example.com"], "/"));
    }
}
