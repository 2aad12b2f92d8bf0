//! The proxy's upstream HTTP/1.1 client: keep-alive connections to agents
//! (plain or rustls), each driven by the request that holds it. There is no
//! per-connection task: the exchange that leases a connection polls it
//! together with the answer it waits for, so a call costs no task hop and
//! no channel hand-off, and a connection the exchange is done with goes
//! back to an idle list. Idle connections are not polled; one the agent
//! closed in the meantime is noticed when it is next used, before the
//! request is written, and the call moves to another connection.
//! `https://` agents are reached over rustls (ring), trusting the Mozilla
//! roots plus the operator's `MOLECULE_AGENT_CA_FILE`. A supplied URL
//! ([`UrlOrigin::Supplied`]) is dialled through `outbound::CheckedConnector`,
//! which opens connections only to addresses the outbound policy allows; a
//! pooled connection was checked when it was opened, so reusing one costs
//! nothing, and pool keys carry the origin so the two never share one.

use axum::http::{HeaderName, HeaderValue, Method, Request, Response, header};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower_service::Service;

use super::endpoint::{Endpoint, Key, UrlOrigin};
use super::exchange::error_chain;
use super::{A2aError, MAX_RESPONSE_BODY, X_WORKSPACE_ID};
use crate::app::outbound::{CheckedConnector, OutboundPolicy, Refused};

/// How long opening a connection to an agent may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Idle connections kept per agent address; more are closed.
const MAX_IDLE_PER_HOST: usize = 256;

type Io = MaybeHttpsStream<TokioIo<TcpStream>>;
type Body = Full<Bytes>;

/// Keep-alive connections to agents, plain or TLS.
#[derive(Clone)]
pub struct Upstream {
    /// For provisioned URLs: hyper's connector, no policy.
    provisioned: HttpsConnector<HttpConnector>,
    /// For supplied URLs: every resolved address is checked first.
    supplied: HttpsConnector<CheckedConnector>,
    pool: Arc<Pool>,
}

/// Idle connections to one address, oldest first (checkout takes the
/// newest), each with when it went idle.
type IdleList = Vec<(Instant, Box<Conn>)>;

#[derive(Default)]
struct Pool {
    idle: Mutex<HashMap<Key, IdleList>>,
    opened: AtomicU64,
}

impl Pool {
    /// The most recently used idle connection to `key` that has not been
    /// idle too long.
    fn checkout(&self, key: &Key) -> Option<Box<Conn>> {
        let mut idle = self.idle.lock().expect("upstream pool poisoned");
        let list = idle.get_mut(key)?;
        let fresh_after = Instant::now().checked_sub(POOL_IDLE);
        while let Some((since, conn)) = list.pop() {
            if fresh_after.is_none_or(|t| since > t) {
                return Some(conn);
            }
            // The rest is older still.
            list.clear();
        }
        None
    }

    fn checkin(&self, key: Key, conn: Box<Conn>) {
        let mut idle = self.idle.lock().expect("upstream pool poisoned");
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE_PER_HOST {
            list.push((Instant::now(), conn));
        }
    }

    /// Close connections idle for longer than [`POOL_IDLE`] and those the
    /// agent closed meanwhile (their sockets would linger half-closed).
    fn sweep(&self) {
        let cut = Instant::now().checked_sub(POOL_IDLE);
        let mut cx = Context::from_waker(Waker::noop());
        let mut idle = self.idle.lock().expect("upstream pool poisoned");
        idle.retain(|_, list| {
            list.retain_mut(|(since, conn)| {
                if cut.is_some_and(|t| *since <= t) {
                    return false;
                }
                // An idle connection only reads: an end of stream from the
                // agent finishes it.
                conn.poll_conn(&mut cx);
                conn.conn.is_some()
            });
            !list.is_empty()
        });
    }

    fn idle_count(&self) -> usize {
        let idle = self.idle.lock().expect("upstream pool poisoned");
        idle.values().map(Vec::len).sum()
    }
}

/// One HTTP/1.1 connection: the request side and the connection state
/// machine, which makes progress only while someone polls it.
struct Conn {
    sender: http1::SendRequest<Body>,
    /// `None` once the state machine has finished (closed or failed). It is
    /// dropped then: that fails a request still queued on it, handing the
    /// request back unsent.
    conn: Option<http1::Connection<Io, Body>>,
}

impl Conn {
    /// Poll `fut` and this connection together until `fut` is ready.
    async fn drive<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        std::future::poll_fn(|cx| {
            self.poll_conn(cx);
            fut.as_mut().poll(cx)
        })
        .await
    }

    fn poll_conn(&mut self, cx: &mut Context<'_>) {
        // A finished connection has already failed or completed whatever
        // waits on it (an answer or a body gets its error).
        if let Some(conn) = self.conn.as_mut()
            && conn.poll_without_shutdown(cx).is_ready()
        {
            self.conn = None;
        }
    }

    /// Ready for another request: the previous exchange is complete and the
    /// connection still open. Polls without a waker of its own.
    fn reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        // The state machine needs a turn to settle after the answer's last
        // byte was handed out.
        for _ in 0..2 {
            self.poll_conn(&mut cx);
            if self.conn.is_none() {
                return false;
            }
            match self.sender.poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => return true,
                Poll::Ready(Err(_)) => return false,
                Poll::Pending => {}
            }
        }
        false
    }
}

/// A connection leased to one exchange; [`Lease::release`] returns it for
/// reuse once the answer has been read to its end. Dropped otherwise, the
/// connection is closed.
pub(super) struct Lease {
    conn: Box<Conn>,
    key: Key,
    pool: Arc<Pool>,
}

impl Lease {
    /// Poll `fut` (reading the answer) while driving the connection.
    pub(super) async fn drive<F: Future>(&mut self, fut: F) -> F::Output {
        self.conn.drive(fut).await
    }

    /// The answer was read to its end: keep the connection if it can take
    /// another request.
    pub(super) fn release(mut self) {
        if self.conn.reusable() {
            self.pool.checkin(self.key, self.conn);
        }
    }
}

impl Upstream {
    /// A client that trusts the Mozilla roots and `extra_roots`, and dials
    /// supplied URLs only where `policy` allows.
    pub fn new(extra_roots: &[CertificateDer<'static>], policy: OutboundPolicy) -> Self {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        // Checked when the configuration was read; a certificate rustls
        // still refuses is skipped (and the agent behind it answers 502).
        roots.add_parsable_certificates(extra_roots.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.enforce_http(false);
        let https = |tls: rustls::ClientConfig| {
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
        };
        Upstream {
            provisioned: https(tls.clone()).wrap_connector(http),
            supplied: https(tls).wrap_connector(CheckedConnector::new(policy, CONNECT_TIMEOUT)),
            pool: Arc::default(),
        }
    }

    /// Connections opened to agents since start (each is reused while it
    /// stays open).
    pub fn connections_opened(&self) -> u64 {
        self.pool.opened.load(Ordering::Relaxed)
    }

    /// Keep-alive connections waiting for the next call.
    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }

    /// Close the idle connections that are too old or that the agent has
    /// closed (the `upstream-idle` background task).
    pub fn close_idle(&self) {
        self.pool.sweep();
    }

    /// Send `req` (made by [`post`]) to `to` and wait for the answer's
    /// head, within `deadline`. The lease must be driven while the body is
    /// read.
    pub(super) async fn send(
        &self,
        to: &Endpoint,
        req: Request<Body>,
        deadline: Option<Instant>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        within(deadline, self.exchange(to, req))
            .await
            .unwrap_or(Err(SendError::Timeout))
    }

    async fn exchange(
        &self,
        to: &Endpoint,
        mut req: Request<Body>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        loop {
            let (mut conn, reused) = match self.pool.checkout(&to.key) {
                Some(conn) => (conn, true),
                None => (self.connect(to).await?, false),
            };
            let sent = conn.sender.try_send_request(req);
            match conn.drive(sent).await {
                Ok(resp) => {
                    let lease = Lease {
                        conn,
                        key: to.key.clone(),
                        pool: self.pool.clone(),
                    };
                    return Ok((resp, lease));
                }
                Err(mut e) => match e.take_message() {
                    // Not written: an idle connection the agent had closed.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(SendError::failed(e.error())),
                },
            }
        }
    }

    async fn connect(&self, to: &Endpoint) -> Result<Box<Conn>, SendError> {
        let uri = to.uri.clone();
        let io = match to.origin() {
            UrlOrigin::Provisioned => self.provisioned.clone().call(uri).await,
            UrlOrigin::Supplied => self.supplied.clone().call(uri).await,
        }
        .map_err(|e| match e.downcast::<Refused>() {
            Ok(refused) => SendError::Refused(*refused),
            Err(e) => SendError::failed(&*e),
        })?;
        let (sender, conn) = http1::handshake(io)
            .await
            .map_err(|e| SendError::failed(&e))?;
        self.pool.opened.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(Conn {
            sender,
            conn: Some(conn),
        }))
    }
}

/// Why an upstream exchange produced no answer.
#[derive(Debug)]
pub(super) enum SendError {
    /// The call's deadline passed.
    Timeout,
    /// Connecting, writing or reading the head failed: what kind of
    /// failure, and the error chain (for logs).
    Failed(Failure, String),
    /// The outbound policy refused every address of a supplied URL.
    Refused(Refused),
}

impl SendError {
    fn failed(e: &(dyn std::error::Error + 'static)) -> Self {
        SendError::Failed(Failure::of(e), error_chain(e))
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Timeout => f.write_str("deadline exceeded"),
            SendError::Failed(_, chain) => f.write_str(chain),
            SendError::Refused(refused) => refused.fmt(f),
        }
    }
}

/// The kind of a transport failure, read from the types of the error and
/// its sources (hyper's and the OS's error kinds), never from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// The connection was closed or reset under the exchange: the agent is
    /// there but dropped the call (busy).
    Dropped,
    /// Anything else (refused connection, name resolution, TLS, ...).
    Other,
}

impl Failure {
    pub(super) fn of(e: &(dyn std::error::Error + 'static)) -> Failure {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(h) = err.downcast_ref::<hyper::Error>()
                && (h.is_incomplete_message() || h.is_closed() || h.is_canceled())
            {
                return Failure::Dropped;
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && matches!(
                    io.kind(),
                    ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
                )
            {
                return Failure::Dropped;
            }
            cur = err.source();
        }
        Failure::Other
    }
}

/// `fut`, unless `deadline` passes first (then `None`).
pub(super) async fn within<F: Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// A JSON POST to an agent.
/// A `GET` of `path_and_query` on `to`'s host, asking for JSON; `None`
/// when the path is not a valid URI path.
pub(super) fn get(to: &Endpoint, path_and_query: &str) -> Option<Request<Body>> {
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.method_mut() = Method::GET;
    *req.uri_mut() = path_and_query.parse().ok()?;
    let h = req.headers_mut();
    h.insert(header::HOST, to.host.clone());
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    Some(req)
}

pub(super) fn post(
    to: &Endpoint,
    body: Bytes,
    caller: Option<String>,
    a2a_headers: &[(HeaderName, HeaderValue)],
) -> Request<Body> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = to.path.clone();
    let h = req.headers_mut();
    h.insert(header::HOST, to.host.clone());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Caller ids come from a header or from the platform: always valid.
    if let Some(v) = caller.and_then(|c| HeaderValue::try_from(c).ok()) {
        h.insert(X_WORKSPACE_ID, v);
    }
    for (k, v) in a2a_headers {
        h.insert(k.clone(), v.clone());
    }
    req
}

/// An answer read whole by [`Upstream::whole`].
pub(super) struct Whole {
    pub status: axum::http::StatusCode,
    pub headers: axum::http::HeaderMap,
    /// The body, or why it could not be read.
    pub body: Result<Bytes, A2aError>,
}

impl Upstream {
    /// Sends `req` and reads its whole answer (capped, within `deadline`),
    /// the connection going back to the pool: for the platform's own
    /// one-shot calls (cards, probes, transcripts, traces, span export).
    pub(super) async fn whole(
        &self,
        to: &Endpoint,
        req: Request<Body>,
        deadline: Option<Instant>,
    ) -> Result<Whole, SendError> {
        let (resp, mut lease) = self.send(to, req, deadline).await?;
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = lease.drive(read_capped(resp, deadline)).await;
        lease.release();
        Ok(Whole {
            status,
            headers,
            body,
        })
    }
}

/// The whole unary answer, at most [`MAX_RESPONSE_BODY`] bytes, read
/// within `deadline` (a timeout mid-body means the agent is busy).
pub(super) async fn read_capped(
    resp: Response<Incoming>,
    deadline: Option<Instant>,
) -> Result<Bytes, A2aError> {
    let declared = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_RESPONSE_BODY as u64) {
        return Err(A2aError::ResponseTooLarge);
    }
    let mut body = resp.into_body();
    // One deadline for the whole body (not a timer per chunk).
    let read = async move {
        // Most answers arrive as one chunk: keep it without copying.
        let mut first: Option<Bytes> = None;
        let mut buf = BytesMut::new();
        while let Some(chunk) = next_chunk(&mut body).await {
            let chunk = chunk.map_err(A2aError::ReadFailed)?;
            let have = first.as_ref().map_or(0, Bytes::len) + buf.len();
            if have + chunk.len() > MAX_RESPONSE_BODY {
                return Err(A2aError::ResponseTooLarge);
            }
            if first.is_none() && buf.is_empty() {
                first = Some(chunk);
                continue;
            }
            if let Some(earlier) = first.take() {
                buf.extend_from_slice(&earlier);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(first.unwrap_or_else(|| buf.freeze()))
    };
    within(deadline, read).await.unwrap_or(Err(A2aError::Busy))
}

/// The next data chunk of an answer, trailers skipped (`None` at its
/// end; an error as its cause chain).
pub(super) async fn next_chunk(body: &mut Incoming) -> Option<Result<Bytes, String>> {
    loop {
        match body.frame().await? {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(e) => return Some(Err(error_chain(&e))),
        }
    }
}

#[cfg(test)]
mod failure_tests {
    use super::Failure;
    use std::io::{Error, ErrorKind};

    /// An error whose text says "eof" but whose kind does not.
    #[derive(Debug)]
    struct Wrapped(Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("while reading")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn failures_are_classified_by_kind_through_the_source_chain() {
        for kind in [
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionAborted,
            ErrorKind::BrokenPipe,
            ErrorKind::UnexpectedEof,
        ] {
            let e = Wrapped(Error::from(kind));
            assert_eq!(Failure::of(&e), Failure::Dropped, "{kind:?}");
        }
        let refused = Wrapped(Error::from(ErrorKind::ConnectionRefused));
        assert_eq!(Failure::of(&refused), Failure::Other);
        // The text is not what decides.
        let text = Error::other("unexpected eof; connection reset");
        assert_eq!(Failure::of(&text), Failure::Other);
    }
}
