//! The proxy's keep-alive connections to agents: reused call after call,
//! replaced when the agent closed one while it was idle, and swept from
//! the pool in the background.

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

use crate::a2a::{send_body, spawn_upstream, workspace_at};
use crate::faults::counter;
use crate::{eventually, start};

/// An HTTP/1.1 upstream that answers each connection's first request with
/// keep-alive and then closes the connection once it has been idle for
/// `idle` (as uvicorn does after its keep-alive timeout).
struct ClosingUpstream {
    url: String,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

async fn spawn_closing_upstream(idle: Duration) -> ClosingUpstream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (count, gone) = (accepted.clone(), closed.clone());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let gone = gone.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut buf).await.unwrap();
                    assert!(n > 0, "request ended early");
                    req.extend_from_slice(&buf[..n]);
                    if let Some(at) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&req[..head_end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                while req.len() < head_end + length {
                    let n = sock.read(&mut buf).await.unwrap();
                    assert!(n > 0, "body ended early");
                    req.extend_from_slice(&buf[..n]);
                }
                let body = br#"{"jsonrpc":"2.0","id":1,"result":{"ok":true}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                sock.write_all(answer.as_bytes()).await.unwrap();
                sock.write_all(body).await.unwrap();
                tokio::time::sleep(idle).await;
                drop(sock);
                gone.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    ClosingUpstream {
        url: format!("http://localhost:{port}"),
        accepted,
        closed,
    }
}

#[tokio::test]
async fn upstream_connections_are_reused_and_ones_the_agent_closed_are_replaced() {
    let t = start().await;
    let opened = |m: String| counter(&m, "molecule_a2a_upstream_connections_opened_total");
    let before = opened(t.client.metrics_text().await.unwrap());
    let (url, up) =
        spawn_upstream(|_| (200, json!({"jsonrpc": "2.0", "id": 1, "result": {}}))).await;
    let (id, _) = workspace_at(&t, "keeps", None, &url).await;
    for _ in 0..5 {
        assert_eq!(t.client.a2a(id, &send_body("x")).await.unwrap().status, 200);
    }
    assert_eq!(up.hits.load(Ordering::SeqCst), 5);
    assert_eq!(
        opened(t.client.metrics_text().await.unwrap()) - before,
        1.0,
        "five calls in a row share one connection"
    );

    // An agent that closes idle connections: the next call finds its
    // pooled connection closed, and goes out on a new one instead of failing.
    let up = spawn_closing_upstream(Duration::from_millis(100)).await;
    let (id, _) = workspace_at(&t, "closes", None, &up.url).await;
    for round in 1..=3 {
        let r = t.client.a2a(id, &send_body("x")).await.unwrap();
        assert_eq!(r.status, 200, "call {round}: {}", r.text());
        assert_eq!(up.accepted.load(Ordering::SeqCst), round);
        eventually(Duration::from_secs(5), || async {
            (up.closed.load(Ordering::SeqCst) == round).then_some(())
        })
        .await
        .expect("the agent closes the idle connection");
    }

    // Both connections wait in the pool; the background sweep closes the
    // one its agent closed and keeps the other.
    let idle = |m: String| counter(&m, "molecule_a2a_upstream_connections_idle");
    assert_eq!(idle(t.client.metrics_text().await.unwrap()), 2.0);
    t.server.app.tasks().activate("upstream-idle");
    eventually(Duration::from_secs(5), || async {
        (idle(t.client.metrics_text().await.unwrap()) == 1.0).then_some(())
    })
    .await
    .expect("the closed connection is swept");
    assert_eq!(t.client.a2a(id, &send_body("x")).await.unwrap().status, 200);
}
