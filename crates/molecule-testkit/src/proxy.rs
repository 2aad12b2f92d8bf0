//! [`DockerFaultProxy`]: an HTTP/1.1 server on a unix socket that forwards
//! each request to the real engine socket over a fresh connection, or
//! injects the fault [`choose`](crate::choose) picks for it.
//!
//! Faults are per request, not per connection: bollard keeps connections
//! alive, so one connection carries many calls. Forwarding passes method,
//! path, headers and bodies through as streams (uploads, logs), and
//! connection upgrades (`exec` attach) are spliced byte for byte.

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TRANSFER_ENCODING};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::faults::{Fault, FaultConfig, RequestInfo, Rolls, Transient, choose};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// What the proxy did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests passed to the daemon untouched.
    pub forwarded: u64,
    pub deadline_exceeded: u64,
    pub eof: u64,
    pub reset: u64,
    pub io_timeout: u64,
    pub not_found: u64,
}

impl FaultCounts {
    /// Injected transient faults of one kind.
    pub fn of(&self, kind: Transient) -> u64 {
        match kind {
            Transient::DeadlineExceeded => self.deadline_exceeded,
            Transient::Eof => self.eof,
            Transient::Reset => self.reset,
            Transient::IoTimeout => self.io_timeout,
        }
    }

    /// Injected transient faults of every kind.
    pub fn transient(&self) -> u64 {
        Transient::ALL.iter().map(|k| self.of(*k)).sum()
    }

    /// Every injected fault, 404s included.
    pub fn injected(&self) -> u64 {
        self.transient() + self.not_found
    }
}

#[derive(Default)]
struct Counters([AtomicU64; 6]);

impl Counters {
    fn slot(fault: Option<Fault>) -> usize {
        match fault {
            None => 0,
            Some(Fault::Transient(Transient::DeadlineExceeded)) => 1,
            Some(Fault::Transient(Transient::Eof)) => 2,
            Some(Fault::Transient(Transient::Reset)) => 3,
            Some(Fault::Transient(Transient::IoTimeout)) => 4,
            Some(Fault::NotFound) => 5,
        }
    }

    fn record(&self, fault: Option<Fault>) {
        self.0[Self::slot(fault)].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> FaultCounts {
        let n = |i: usize| self.0[i].load(Ordering::Relaxed);
        FaultCounts {
            forwarded: n(0),
            deadline_exceeded: n(1),
            eof: n(2),
            reset: n(3),
            io_timeout: n(4),
            not_found: n(5),
        }
    }
}

struct Shared {
    upstream: PathBuf,
    config: Mutex<FaultConfig>,
    counts: Counters,
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `started` of the last request start or end.
    last_activity_ms: AtomicU64,
}

impl Shared {
    fn config(&self) -> MutexGuard<'_, FaultConfig> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stamp(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    fn begin(&self) -> Activity<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.stamp();
        Activity(self)
    }
}

/// One request in flight; ends (and stamps the time) on drop.
struct Activity<'a>(&'a Shared);

impl Drop for Activity<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.stamp();
    }
}

/// A fault-injecting proxy in front of a Docker engine socket. Dropping it
/// (or [`stop`](Self::stop)) closes the socket, cuts every connection and
/// removes its temp directory.
pub struct DockerFaultProxy {
    dir: PathBuf,
    socket: PathBuf,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl DockerFaultProxy {
    /// Listen on a fresh socket in a temp directory, forwarding to the
    /// engine socket `upstream` (which is only dialled per request). Must be
    /// called inside a Tokio runtime. Faults start off.
    pub fn start(upstream: PathBuf) -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "molecule-docker-faults-{}-{}-{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("docker.sock");
        let listener = match UnixListener::bind(&socket) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let shared = Arc::new(Shared {
            upstream,
            config: Mutex::new(FaultConfig::default()),
            counts: Counters::default(),
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_activity_ms: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self {
            dir,
            socket,
            shared,
            accept,
        })
    }

    /// The proxy's socket.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// `unix:///…/docker.sock`, for a `DOCKER_HOST`-style setting.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Change any setting at once (the next request sees the result).
    pub fn configure(&self, change: impl FnOnce(&mut FaultConfig)) {
        change(&mut self.shared.config());
    }

    /// Share (0..=1) of eligible requests that fail transiently.
    pub fn set_transient_share(&self, share: f64) {
        self.configure(|c| c.transient_share = share.clamp(0.0, 1.0));
    }

    /// Share (0..=1) of eligible container inspects answered 404.
    pub fn set_not_found_share(&self, share: f64) {
        self.configure(|c| c.not_found_share = share.clamp(0.0, 1.0));
    }

    /// The transient shapes to draw from (default: all four).
    pub fn set_kinds(&self, kinds: &[Transient]) {
        self.configure(|c| c.kinds = kinds.to_vec());
    }

    /// How long a deadline-exceeded answer is held back.
    pub fn set_hold(&self, hold: Duration) {
        self.configure(|c| c.hold = hold);
    }

    /// Only requests for which `eligible` is true may get a fault.
    pub fn set_filter(&self, eligible: impl Fn(&RequestInfo) -> bool + Send + Sync + 'static) {
        self.configure(|c| c.filter = Some(Arc::new(eligible)));
    }

    /// Every request is eligible again.
    pub fn clear_filter(&self) {
        self.configure(|c| c.filter = None);
    }

    /// Stop injecting (both shares to zero); the other settings stay.
    pub fn faults_off(&self) {
        self.configure(|c| {
            c.transient_share = 0.0;
            c.not_found_share = 0.0;
        });
    }

    pub fn counts(&self) -> FaultCounts {
        self.shared.counts.snapshot()
    }

    /// Requests being handled right now (held ones included).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Wait until no request is in flight and none started or ended for
    /// `quiet`; false if that did not happen within `within`. Switching
    /// faults at such a moment keeps one burst of calls (one health sweep)
    /// from seeing half old and half new settings.
    pub async fn wait_idle(&self, quiet: Duration, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let last = Duration::from_millis(self.shared.last_activity_ms.load(Ordering::Relaxed));
            let idle_for = self.shared.started.elapsed().saturating_sub(last);
            if self.in_flight() == 0 && idle_for >= quiet {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Close the socket and every connection; remove the temp directory.
    pub fn stop(self) {}
}

impl Drop for DockerFaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Accept connections until aborted; aborting drops the set, which aborts
/// every connection task with it.
async fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, shared.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fault proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: UnixStream, shared: Arc<Shared>) {
    let service = service_fn(move |req| handle(shared.clone(), req));
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        // Injected EOFs and resets end up here by design.
        tracing::debug!(error = %e, "fault proxy: connection ended");
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, BoxError> {
    let _activity = shared.begin();
    let info = RequestInfo::new(req.method().as_str(), req.uri().path());
    let (fault, hold) = {
        let config = shared.config();
        (choose(&config, &info, &Rolls::random()), config.hold)
    };
    shared.counts.record(fault);
    if let Some(f) = fault {
        tracing::debug!(fault = ?f, method = %info.method, path = %info.path, "fault proxy: injecting");
    }
    match fault {
        None => forward(&shared.upstream, req).await,
        Some(Fault::NotFound) => {
            let name = info.inspected_container().unwrap_or_default();
            Ok(message(
                StatusCode::NOT_FOUND,
                &format!("No such container: {name}"),
            ))
        }
        Some(Fault::Transient(Transient::IoTimeout)) => {
            Ok(message(StatusCode::INTERNAL_SERVER_ERROR, "i/o timeout"))
        }
        Some(Fault::Transient(Transient::DeadlineExceeded)) => {
            // The daemon acts, but answers only after the client gave up.
            let answer = forward(&shared.upstream, req).await;
            tokio::time::sleep(hold).await;
            answer
        }
        // An error from the service makes hyper close the connection
        // without writing anything.
        Some(Fault::Transient(Transient::Eof)) => Err("injected EOF".into()),
        Some(Fault::Transient(Transient::Reset)) => reset(&shared.upstream, req).await,
    }
}

/// A Docker-style JSON error answer.
fn message(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let body = format!("{{\"message\":\"{}\"}}", text.replace('"', "\\\""));
    let mut resp = Response::new(Full::new(Bytes::from(body)).map_err(BoxError::from).boxed());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Pass `req` to the daemon over a new connection; stream the answer back.
async fn forward(
    upstream: &Path,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, BoxError> {
    let stream = UnixStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "fault proxy: upstream connection ended");
        }
    });
    let client_side = hyper::upgrade::on(&mut req);
    let mut resp = sender.send_request(req).await?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let daemon_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match tokio::try_join!(client_side, daemon_side) {
                Ok((client, daemon)) => {
                    let (mut c, mut d) = (TokioIo::new(client), TokioIo::new(daemon));
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut d).await;
                }
                Err(e) => tracing::debug!(error = %e, "fault proxy: upgrade failed"),
            }
        });
    }
    Ok(resp.map(|b| b.map_err(BoxError::from).boxed()))
}

/// Forward, then cut the connection halfway through the answer's body (or
/// right away when the answer has no body to cut).
async fn reset(upstream: &Path, req: Request<Incoming>) -> Result<Response<ProxyBody>, BoxError> {
    let (mut parts, body) = forward(upstream, req).await?.into_parts();
    let bytes = body.collect().await?.to_bytes();
    if bytes.len() < 2 {
        return Err("injected reset after the daemon answered".into());
    }
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(TRANSFER_ENCODING);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let head = futures_util::stream::iter([Ok::<_, BoxError>(Frame::data(half))]);
    let cut = futures_util::stream::once(async {
        // Let the head and the first half reach the client first.
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err::<Frame<Bytes>, BoxError>(
            io::Error::new(io::ErrorKind::ConnectionReset, "injected connection reset").into(),
        )
    });
    Ok(Response::from_parts(
        parts,
        BodyExt::boxed(StreamBody::new(head.chain(cut))),
    ))
}

#[cfg(test)]
mod tests;
