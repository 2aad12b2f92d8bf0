//! Global middleware (api-contract §1), one layer that does, outermost
//! first: security headers (on every response, 403/429 included), request
//! metrics and logs, the Host check (`host.rs`), CORS, per-IP rate limit,
//! tenant guard.

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::app::App;

/// Parsed once: inserting by `&str` would parse and hash each name on
/// every response.
static SECURITY_HEADERS: [(HeaderName, HeaderValue); 6] = [
    (
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    ),
    (
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    ),
    (
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("default-src 'self'"),
    ),
    (
        HeaderName::from_static("strict-transport-security"),
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    ),
    (
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    ),
    (
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    ),
];

/// What the global middleware needs.
#[derive(Clone)]
pub struct Global {
    pub app: App,
    pub limiter: std::sync::Arc<RateLimiter>,
    pub hosts: std::sync::Arc<super::host::HostPolicy>,
}

/// The whole of §1 in one layer (one service clone and one boxed future per
/// request, not five): the layers below in their order, outermost first.
pub async fn global(
    State(g): State<Global>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // `MatchedPath` is a shared string: cloning it allocates nothing.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = if g.hosts.admits(req.headers(), req.uri()) {
        cors(&g, peer, req, next).await
    } else {
        (
            StatusCode::FORBIDDEN,
            axum::Json(json!({ "error": super::host::REFUSED })),
        )
            .into_response()
    };
    observe(&g.app, &method, matched.as_ref(), &resp, started);
    security_headers(&mut resp);
    resp
}

/// On every response, 403 and 429 included.
fn security_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.reserve(SECURITY_HEADERS.len());
    for (k, v) in &SECURITY_HEADERS {
        if let header::Entry::Vacant(slot) = h.entry(k.clone()) {
            slot.insert(v.clone());
        }
    }
}

/// Counts every request (403 and 429 included) by method, route pattern and
/// status, and logs it.
fn observe(
    app: &App,
    method: &Method,
    matched: Option<&MatchedPath>,
    resp: &Response,
    started: Instant,
) {
    let route = matched.map_or("unmatched", MatchedPath::as_str);
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    app.metrics()
        .observe_request(method, route, status, elapsed.as_secs_f64());
    tracing::debug!(method = %method, path = %route, status = %status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request");
}

const ALLOWED_HEADERS: &str = "Origin, Content-Type, X-Workspace-ID, Authorization";
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";

fn origin_allowed(app: &App, origin: &str, headers: &HeaderMap) -> bool {
    if app
        .config()
        .cors_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    // Same host: the Origin is `http(s)://` and the Host header. A rebound
    // page passes this (its origin and Host agree), which is why the Host
    // check runs first wherever admin routes are open.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && authority.eq_ignore_ascii_case(host)
}

/// CORS: a foreign origin gets 403; a preflight is answered here.
async fn cors(g: &Global, peer: SocketAddr, req: Request, next: Next) -> Response {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string)
    else {
        return rate_limit(g, peer, req, next).await;
    };
    if !origin_allowed(&g.app, &origin, req.headers()) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let allow_origin = HeaderValue::from_str(&origin).unwrap_or(HeaderValue::from_static("null"));
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut resp = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        rate_limit(g, peer, req, next).await
    };
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("43200"),
        );
    }
    resp
}

/// Fixed one-minute windows per client IP (the TCP peer; forwarding headers
/// are not trusted).
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// The verdict for one request.
pub struct RateDecision {
    pub allowed: bool,
    pub remaining: u32,
    pub reset_secs: u64,
}

const WINDOW: Duration = Duration::from_secs(60);

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::default(),
        }
    }

    pub fn check(&self, ip: IpAddr, now: Instant) -> RateDecision {
        let Ok(mut b) = self.buckets.lock() else {
            return RateDecision {
                allowed: true,
                remaining: 0,
                reset_secs: 60,
            };
        };
        let entry = b.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        let reset_secs = (WINDOW.saturating_sub(now.duration_since(entry.0)))
            .as_secs()
            .max(1);
        if entry.1 >= self.per_minute {
            return RateDecision {
                allowed: false,
                remaining: 0,
                reset_secs,
            };
        }
        entry.1 += 1;
        RateDecision {
            allowed: true,
            remaining: self.per_minute - entry.1,
            reset_secs,
        }
    }

    pub fn purge_idle(&self, idle: Duration) {
        let now = Instant::now();
        if let Ok(mut b) = self.buckets.lock() {
            b.retain(|_, (start, _)| now.duration_since(*start) < idle);
        }
    }
}

/// Per client IP, with the limit headers on every answer.
async fn rate_limit(g: &Global, peer: SocketAddr, req: Request, next: Next) -> Response {
    let limiter = &g.limiter;
    let d = limiter.check(peer.ip(), Instant::now());
    let mut resp = if d.allowed {
        tenant_guard(&g.app, req, next).await
    } else {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({ "error": "rate limit exceeded", "retry_after": d.reset_secs })),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(d.reset_secs));
        r
    };
    // Names parsed at compile time: a `&str` name is parsed on every insert.
    const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    let h = resp.headers_mut();
    h.insert(LIMIT, HeaderValue::from(limiter.per_minute));
    h.insert(REMAINING, HeaderValue::from(d.remaining));
    h.insert(RESET, HeaderValue::from(d.reset_secs));
    resp
}

/// Only when `MOLECULE_ORG_ID` is set: requests must name the org.
async fn tenant_guard(app: &App, req: Request, next: Next) -> Response {
    let Some(org) = app.config().org_id.as_deref() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path == "/health" || path == "/metrics" {
        return next.run(req).await;
    }
    let h = req.headers();
    let by_header = h.get("x-molecule-org-id").and_then(|v| v.to_str().ok()) == Some(org);
    let by_replay = h
        .get("fly-replay-src")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .any(|seg| seg.trim().strip_prefix("state=") == Some(org))
        });
    if by_header || by_replay {
        next.run(req).await
    } else {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_limits_and_resets() {
        let rl = RateLimiter::new(3);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        let got: Vec<bool> = (0..4).map(|_| rl.check(ip, t0).allowed).collect();
        assert_eq!(got, [true, true, true, false]);
        assert_eq!(rl.check(ip, t0).remaining, 0);
        let other: IpAddr = [127, 0, 0, 2].into();
        assert!(rl.check(other, t0).allowed, "buckets are per IP");
        assert!(
            rl.check(ip, t0 + WINDOW).allowed,
            "a new window starts fresh"
        );
    }
}
