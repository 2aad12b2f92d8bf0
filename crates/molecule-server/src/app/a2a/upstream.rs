//! The proxy's upstream HTTP/1.1 client: hyper's pooled keep-alive client
//! with no request builder, redirect policy or body wrapper on top (the
//! proxy forwards one POST per call and needs none of that), and the
//! call's own deadline instead of a client-wide timeout. `https://` agents
//! are reached over rustls (ring), trusting the Mozilla roots plus the
//! operator's `MOLECULE_AGENT_CA_FILE`.

use axum::http::{HeaderValue, Method, Request, Response, Uri, header};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::exchange::error_chain;
use super::{A2aError, MAX_RESPONSE_BODY};

/// How long opening a connection to an agent may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle pooled connections are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// Pooled keep-alive connections to agents, plain or TLS.
#[derive(Clone)]
pub struct Upstream(Client<HttpsConnector<HttpConnector>, Full<Bytes>>);

impl Upstream {
    /// A client that trusts the Mozilla roots and `extra_roots`.
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> Self {
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
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Upstream(
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(POOL_IDLE)
                .pool_timer(TokioTimer::new())
                .build(connector),
        )
    }

    /// Send `req` and wait for the answer's head, within `deadline`.
    pub(super) async fn send(
        &self,
        req: Request<Full<Bytes>>,
        deadline: Option<Instant>,
    ) -> Result<Response<Incoming>, SendError> {
        match within(deadline, self.0.request(req)).await {
            None => Err(SendError::Timeout),
            Some(Ok(resp)) => Ok(resp),
            Some(Err(e)) => Err(SendError::Failed(error_chain(&e))),
        }
    }
}

/// Why an upstream exchange produced no answer.
#[derive(Debug)]
pub(super) enum SendError {
    /// The call's deadline passed.
    Timeout,
    /// Connecting, writing or reading the head failed; the error chain.
    Failed(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Timeout => f.write_str("deadline exceeded"),
            SendError::Failed(chain) => f.write_str(chain),
        }
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
pub(super) fn post(
    uri: Uri,
    body: Bytes,
    caller: Option<String>,
    a2a_headers: &[(axum::http::HeaderName, HeaderValue)],
) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Caller ids come from a header or from the platform: always valid.
    if let Some(v) = caller.and_then(|c| HeaderValue::try_from(c).ok()) {
        h.insert("x-workspace-id", v);
    }
    for (k, v) in a2a_headers {
        h.insert(k.clone(), v.clone());
    }
    req
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
