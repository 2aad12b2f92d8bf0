//! The accept loop of every listener: HTTP/1.1 connections served by hyper
//! directly (not `axum::serve`, which has no timeouts and no caps), so that
//! idle or slow sockets cannot exhaust the process.
//!
//! - A global and a per-address cap on open connections (WebSockets
//!   included: the permit travels with the socket into the upgrade).
//!   Connections past a cap get a best-effort 503 and are closed at once.
//! - Per-connection timeouts (`timeouts.rs`): the request head, the request
//!   body while it is read, and the idle time between requests. Responses
//!   are never timed: an A2A SSE relay may last minutes.
//! - Graceful shutdown through the server's watch channel: stop accepting,
//!   let in-flight requests finish, then return.
//!
//! It does not route, authenticate or rate-limit; the router does.

mod caps;
mod timeouts;

pub use caps::Caps;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower_service::Service;

use crate::config::ConnectionLimits;
use caps::Refusal;
use timeouts::{Expiry, TimedBody, TrackedBody, TrackedIo};

/// Serve `router` on `listener` until `stop` turns true, then wait for the
/// open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    caps: Arc<Caps>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    // Every connection task holds a sender; `recv` answers `None` once
    // the last one is gone.
    let (open_tx, mut open_rx) = mpsc::channel::<Infallible>(1);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of descriptors (EMFILE) or memory: accepting again at
                // once would spin; the caps normally keep us from here.
                tracing::warn!(error = %e, "accept failed; pausing");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        };
        let permit = match caps.admit(peer.ip()) {
            Ok(p) => p,
            Err(refusal) => {
                refuse(tcp, refusal);
                continue;
            }
        };
        // Small request/response exchanges (heartbeats, proxied JSON-RPC)
        // must not wait on Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let io = TrackedIo::new(tcp, permit);
        tokio::spawn(connection(
            io,
            peer,
            router.clone(),
            limits,
            stop.clone(),
            open_tx.clone(),
        ));
    }
    drop(listener);
    drop(open_tx);
    let _ = open_rx.recv().await;
    Ok(())
}

/// Errors of one incoming connection (it went away before we took it);
/// the listener itself is fine.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Over a cap: a 503 if the socket takes it without waiting, then close.
fn refuse(tcp: TcpStream, refusal: Refusal) {
    const BODY: &str = r#"{"error":"too many connections"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tcp.try_write(answer.as_bytes());
    tracing::debug!(reason = refusal.as_str(), "connection refused");
    // Dropping closes it; nothing waits on a client that will not read.
    drop(tcp);
}

/// One connection: hyper's HTTP/1.1 state machine, upgrades allowed, raced
/// against the connection's deadline and the server's shutdown.
async fn connection(
    io: TrackedIo,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    _open: mpsc::Sender<Infallible>,
) {
    let state = io.state();
    let service = {
        let state = state.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let in_flight = state.request_started();
            let mut req =
                req.map(|b| axum::body::Body::new(TimedBody::new(b, limits.body_read_timeout)));
            // What `into_make_service_with_connect_info` did: the rate
            // limiter keys on the peer address.
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move {
                let resp = match router.call(req).await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(resp.map(|body| TrackedBody::new(body, in_flight)))
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let watchdog = tokio::time::sleep(limits.header_read_timeout);
    let mut watchdog = std::pin::pin!(watchdog);
    let mut draining = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = watchdog.as_mut() => match state.expiry(&limits) {
                Expiry::Now(what) => {
                    tracing::debug!(%peer, timeout = what, "closing a stalled connection");
                    return;
                }
                Expiry::At(at) => watchdog.as_mut().reset(at),
            },
            // Keep serving what is in flight, accept no new request; the
            // watchdog still closes a client that stalls the drain.
            _ = stop.wait_for(|s| *s), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
