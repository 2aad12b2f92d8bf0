//! What a connection is doing, for its timeouts. Three states, read by the
//! connection's watchdog:
//!
//! - waiting for a request head that has started to arrive (or for the
//!   first one, from accept): the header timeout;
//! - a request in flight, from its head until its response body is done:
//!   no connection timeout (the request body has its own, [`TimedBody`];
//!   a response may stream for minutes);
//! - quiet between requests: the idle timeout.
//!
//! hyper's own `header_read_timeout` is not used: it also runs while a
//! keep-alive connection waits for its next request, so the idle timeout
//! could never be longer than the header timeout.

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::caps::Permit;
use crate::config::ConnectionLimits;

/// No time recorded.
const NONE: u64 = u64::MAX;

/// Shared by a connection's socket, its requests and its watchdog. Times
/// are milliseconds since the connection opened.
pub struct ConnState {
    opened: Instant,
    in_flight: AtomicU32,
    /// When the first byte of the next request head arrived, or `NONE`.
    head_since: AtomicU64,
    /// When the last request finished.
    quiet_since: AtomicU64,
}

/// The watchdog's verdict.
pub enum Expiry {
    /// Close the connection: this timeout passed.
    Now(&'static str),
    /// Look again then.
    At(tokio::time::Instant),
}

impl ConnState {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            // The first head is timed from accept: a socket that sends
            // nothing is the cheapest way to hold a connection.
            head_since: AtomicU64::new(0),
            quiet_since: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    /// Bytes arrived: between requests, they start the next head. Bytes
    /// read while a request is in flight (its body, or a pipelined next
    /// head) start nothing, so a partial head pipelined behind a request is
    /// held to the idle timeout rather than the header timeout: still
    /// bounded, and cheaper than parsing HTTP here.
    fn bytes_arrived(&self) {
        if self.in_flight.load(Relaxed) == 0 && self.head_since.load(Relaxed) == NONE {
            self.head_since.store(self.now_ms(), Relaxed);
        }
    }

    /// hyper parsed a head; the request is in flight until the returned
    /// guard (moved into the response body) is dropped.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        self.head_since.store(NONE, Relaxed);
        InFlight(self.clone())
    }

    pub fn expiry(&self, limits: &ConnectionLimits) -> Expiry {
        let (since, limit, what) = if self.in_flight.load(Relaxed) > 0 {
            // Nothing to time; look again when it may have finished.
            let again = limits.header_read_timeout.min(limits.idle_timeout);
            return Expiry::At(tokio::time::Instant::now() + again);
        } else {
            match self.head_since.load(Relaxed) {
                NONE => (self.quiet_since.load(Relaxed), limits.idle_timeout, "idle"),
                head => (head, limits.header_read_timeout, "header"),
            }
        };
        let deadline = since.saturating_add(u64::try_from(limit.as_millis()).unwrap_or(NONE));
        if self.now_ms() >= deadline {
            Expiry::Now(what)
        } else {
            Expiry::At((self.opened + Duration::from_millis(deadline)).into())
        }
    }
}

/// A request in flight (see [`ConnState::request_started`]).
pub struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Relaxed) == 1 {
            self.0.quiet_since.store(self.0.now_ms(), Relaxed);
        }
    }
}

/// The client socket, its place under the caps and the state its reads
/// update. An upgraded connection (`/ws`) keeps all three until it closes.
pub struct TrackedIo {
    tcp: TcpStream,
    state: Arc<ConnState>,
    _permit: Permit,
}

impl TrackedIo {
    pub fn new(tcp: TcpStream, permit: Permit) -> Self {
        Self {
            tcp,
            state: Arc::new(ConnState::new()),
            _permit: permit,
        }
    }

    pub fn state(&self) -> Arc<ConnState> {
        self.state.clone()
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.tcp).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.state.bytes_arrived();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A request body that must be complete within the body timeout of the
/// first time its handler reads it. The timer exists only once a read has
/// to wait: a body that came with its head costs no timer.
pub struct TimedBody {
    inner: hyper::body::Incoming,
    limit: Duration,
    deadline: Option<tokio::time::Instant>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The error a handler's body read gets when the body timed out.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {} s", .0.as_secs_f64())]
pub struct BodyTimeout(Duration);

impl TimedBody {
    pub fn new(inner: hyper::body::Incoming, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: None,
            timer: None,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let limit = this.limit;
        let deadline = *this
            .deadline
            .get_or_insert_with(|| tokio::time::Instant::now() + limit);
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(BodyTimeout(limit).into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request in flight until hyper is done
/// with it (fully written, or the connection closed).
pub struct TrackedBody {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl TrackedBody {
    pub fn new(inner: axum::body::Body, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
