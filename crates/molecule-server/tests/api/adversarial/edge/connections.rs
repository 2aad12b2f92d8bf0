//! Connection exhaustion (issue 12, item 4): idle sockets past the caps are
//! closed at once, and a client that stalls in its head, its body or
//! between requests is disconnected after the configured timeout.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

use super::raw::{closed_within, connect_from, exchange, read_response};
use crate::{eventually, start_with};

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// Long enough that only the caps can close a socket in the cap tests.
const PATIENT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn idle_sockets_past_the_per_ip_cap_are_closed_and_health_still_answers() {
    const SOCKETS: usize = 2_000;
    const PER_IP: usize = 50;
    let t = start_with(|c| {
        c.connections.max_connections_per_ip = PER_IP;
        c.connections.header_read_timeout = PATIENT;
        c.connections.idle_timeout = PATIENT;
    })
    .await;
    let addr = t.server.addr;
    // Each socket waits in its own task for the server to close it; the
    // ones the server keeps stay open until the test ends.
    let closed = Arc::new(AtomicUsize::new(0));
    let mut held = tokio::task::JoinSet::new();
    for _ in 0..SOCKETS {
        let mut s = connect_from(LOOPBACK, addr).await;
        let closed = closed.clone();
        held.spawn(async move {
            if closed_within(&mut s, PATIENT).await {
                closed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let all_refused = eventually(Duration::from_secs(10), || {
        let n = closed.load(Ordering::Relaxed);
        async move { (n == SOCKETS - PER_IP).then_some(()) }
    })
    .await;
    assert!(
        all_refused.is_some(),
        "the server should keep {PER_IP} idle sockets from one address and close the rest; it closed {}",
        closed.load(Ordering::Relaxed)
    );
    let health = tokio::time::timeout(
        Duration::from_secs(2),
        exchange(OTHER, addr, "GET /health HTTP/1.1\r\nHost: 127.0.0.1"),
    )
    .await
    .expect("/health answers in time from another address");
    assert_eq!(health.status, 200, "{}", health.body);
    // The capped address itself is refused, with a 503 when it can be read.
    let mut s = connect_from(LOOPBACK, addr).await;
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    held.abort_all();
}

#[tokio::test]
async fn the_global_cap_refuses_new_connections_until_one_closes() {
    const CAP: usize = 20;
    let t = start_with(|c| {
        c.connections.max_connections = CAP;
        c.connections.max_connections_per_ip = CAP;
        c.connections.header_read_timeout = PATIENT;
        c.connections.idle_timeout = PATIENT;
    })
    .await;
    let addr = t.server.addr;
    let mut idle = Vec::new();
    for _ in 0..CAP {
        idle.push(connect_from(LOOPBACK, addr).await);
    }
    // Accepted in order, so this one comes after the CAP idle ones.
    let mut s = connect_from(OTHER, addr).await;
    let _ = s
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let refused = super::raw::read_to_close(&mut s).await;
    assert!(
        refused.is_empty() || refused.starts_with("HTTP/1.1 503"),
        "over the global cap: refused at once, got {refused:?}"
    );
    drop(idle);
    let served = eventually(Duration::from_secs(5), || async {
        let r = exchange(OTHER, addr, "GET /health HTTP/1.1\r\nHost: 127.0.0.1").await;
        (r.status == 200).then_some(())
    })
    .await;
    assert!(served.is_some(), "closed connections give their slots back");
}

#[tokio::test]
async fn half_a_header_is_disconnected_after_the_header_timeout() {
    let t = start_with(|c| {
        c.connections.header_read_timeout = Duration::from_millis(300);
        c.connections.idle_timeout = PATIENT;
    })
    .await;
    let mut s = connect_from(LOOPBACK, t.server.addr).await;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "a client that never finishes its head is disconnected"
    );
    // A socket that sends nothing at all is held to the same deadline.
    let mut silent = connect_from(LOOPBACK, t.server.addr).await;
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_gets_the_idle_timeout_not_the_header_timeout() {
    let header = Duration::from_millis(200);
    let t = start_with(|c| {
        c.connections.header_read_timeout = header;
        c.connections.idle_timeout = Duration::from_millis(1_500);
    })
    .await;
    let mut s = connect_from(LOOPBACK, t.server.addr).await;
    let request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    s.write_all(request).await.unwrap();
    assert_eq!(read_response(&mut s).await.status, 200);
    // Asserting an absence takes time: idle for three header timeouts.
    tokio::time::sleep(header * 3).await;
    s.write_all(request).await.unwrap();
    assert_eq!(
        read_response(&mut s).await.status,
        200,
        "an idle keep-alive connection outlives the header timeout"
    );
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "and is closed after the idle timeout"
    );
}

#[tokio::test]
async fn a_stalled_request_body_is_answered_after_the_body_timeout() {
    let t = start_with(|c| {
        c.connections.body_read_timeout = Duration::from_millis(300);
    })
    .await;
    let mut s = connect_from(LOOPBACK, t.server.addr).await;
    s.write_all(
        b"POST /registry/heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"workspace_id\":",
    )
    .await
    .unwrap();
    let answer = super::raw::read_to_close(&mut s).await;
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("failed to read request body"),
        "a body that stops arriving gets a 400 and the connection closes: {answer:?}"
    );
}

/// Not a hole but the line the fix must not cross: a streamed A2A answer
/// whose events are further apart than every connection timeout is relayed
/// to its end.
#[tokio::test]
async fn a_long_streaming_answer_outlives_every_connection_timeout() {
    let short = Duration::from_millis(150);
    let t = start_with(|c| {
        c.connections.header_read_timeout = short;
        c.connections.body_read_timeout = short;
        c.connections.idle_timeout = short;
    })
    .await;
    let agent = crate::a2a::spawn_agent(short * 3).await;
    let (id, _) = crate::a2a::workspace_at(&t, "slow streamer", None, agent.url()).await;
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "message/stream",
        "params": { "message": { "role": "user", "messageId": "s-1",
            "parts": [{ "kind": "text", "text": "one two three four" }] } }
    });
    molecule_client::install_crypto_provider();
    let mut resp = reqwest::Client::new()
        .post(format!("{}/workspaces/{id}/a2a", t.server.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    while let Some(chunk) = resp.chunk().await.expect("the stream is not cut") {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("four"), "every word arrived: {text}");
}
