//! An agent's address as the proxy dials it: the URL parsed once per
//! target, and who chose it ([`UrlOrigin`]), which decides whether the
//! outbound policy applies when a connection to it is opened.

use axum::http::uri::PathAndQuery;
use axum::http::{HeaderValue, Uri};
use std::sync::Arc;

use molecule_types::Runtime;

/// Who chose an agent's URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrlOrigin {
    /// This platform's provisioner, for a runtime it started: the port it
    /// published on 127.0.0.1. Dialled as it is.
    Provisioned,
    /// An agent (registration) or an API caller (`POST /workspaces`): every
    /// address it resolves to is checked against the outbound policy when
    /// a connection is opened.
    Supplied,
}

impl UrlOrigin {
    /// Where the URL of a workspace row (`runtime`, `url`) came from. Only
    /// a platform that runs workspaces writes URLs for non-external rows
    /// (registration then keeps the provisioner's URL), and it always
    /// writes `http://127.0.0.1:<port>`; registration refuses loopback
    /// literals, so a URL of that shape on such a row was not supplied.
    /// Anything else counts as supplied, including rows registered before
    /// a provisioner was configured.
    pub fn of(runtime: &Runtime, url: &str, has_provisioner: bool) -> UrlOrigin {
        let published = url.trim().parse::<Uri>().ok().is_some_and(|u| {
            u.scheme_str() == Some("http")
                && u.host() == Some("127.0.0.1")
                && u.port_u16().is_some()
        });
        if has_provisioner && !runtime.is_external() && published {
            UrlOrigin::Provisioned
        } else {
            UrlOrigin::Supplied
        }
    }
}

/// Where a connection goes: who chose the address, TLS or not, and the
/// authority of the agent's URL. A connection opened under one origin is
/// never reused for the other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub(super) origin: UrlOrigin,
    pub(super) https: bool,
    pub(super) authority: Arc<str>,
}

/// An agent's address, parsed once per target rather than per call: the
/// URL to connect to, the request target and `Host` header a call carries
/// on the wire, and the pool key.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub(super) uri: Uri,
    pub(super) path: Uri,
    pub(super) host: HeaderValue,
    pub(super) key: Key,
}

impl Endpoint {
    /// An agent URL the proxy can call: `http(s)://host[:port][/path]`.
    /// Anything else (another scheme, no host) gives `None`.
    pub fn parse(url: &str, origin: UrlOrigin) -> Option<Self> {
        let uri: Uri = url.trim().parse().ok()?;
        let https = match uri.scheme_str()? {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let authority = uri.authority()?;
        if authority.host().is_empty() {
            return None;
        }
        let host = match authority.port() {
            Some(port) => format!("{}:{port}", authority.host()),
            None => authority.host().to_string(),
        };
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        Some(Endpoint {
            host: HeaderValue::try_from(host).ok()?,
            path: Uri::from(path),
            key: Key {
                origin,
                https,
                authority: authority.as_str().into(),
            },
            uri,
        })
    }

    pub fn origin(&self) -> UrlOrigin {
        self.key.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use UrlOrigin::*;

    #[test]
    fn agent_urls_must_be_http_or_https_with_a_host() {
        let ok = Endpoint::parse("http://127.0.0.1:8000", Supplied).expect("host and port");
        assert_eq!(ok.host, "127.0.0.1:8000");
        assert_eq!(ok.path, "/");
        assert_eq!(ok.uri, "http://127.0.0.1:8000/");
        assert!(!ok.key.https);
        let ok = Endpoint::parse(" https://user@agent.example.com/a2a?x=1 ", Supplied)
            .expect("with a path");
        assert_eq!(ok.host, "agent.example.com", "no user info in Host");
        assert_eq!(ok.path, "/a2a?x=1");
        assert!(ok.key.https);
        for bad in [
            "",
            "agent:8000",
            "https://",
            "ftp://agent",
            "http://",
            "not a url",
        ] {
            assert!(
                Endpoint::parse(bad, Supplied).is_none(),
                "{bad:?} is refused"
            );
        }
    }

    #[test]
    fn the_pool_keeps_connections_apart_by_origin_scheme_and_address() {
        let plain = Endpoint::parse("http://agent:8000", Supplied).unwrap();
        let tls = Endpoint::parse("https://agent:8000", Supplied).unwrap();
        let other = Endpoint::parse("http://agent:8001/a2a", Supplied).unwrap();
        let same = Endpoint::parse("http://agent:8000/other", Supplied).unwrap();
        let trusted = Endpoint::parse("http://agent:8000", Provisioned).unwrap();
        assert_ne!(plain.key, tls.key);
        assert_ne!(plain.key, other.key);
        assert_ne!(plain.key, trusted.key);
        assert_eq!(plain.key, same.key);
    }

    #[test]
    fn only_a_provisioners_published_port_is_trusted() {
        // (runtime, url, platform runs workspaces, origin)
        let cases = [
            ("claude-code", "http://127.0.0.1:32768", true, Provisioned),
            ("claude-code", "http://127.0.0.1:32768", false, Supplied),
            ("external", "http://127.0.0.1:32768", true, Supplied),
            ("claude-code", "http://localhost:32768", true, Supplied),
            ("claude-code", "http://127.0.0.1", true, Supplied),
            ("claude-code", "https://127.0.0.1:32768", true, Supplied),
            ("claude-code", "http://169.254.169.254:80", true, Supplied),
            ("claude-code", "http://agent.example:8000", true, Supplied),
            ("claude-code", "", true, Supplied),
        ];
        for (runtime, url, provisioner, want) in cases {
            assert_eq!(
                UrlOrigin::of(&runtime.into(), url, provisioner),
                want,
                "{runtime} {url} {provisioner}"
            );
        }
    }
}
