//! Adversarial tests: the edge (issue 12, items 3, 4, 7, 8, 9): metric
//! label cardinality, connection caps and timeouts (`connections.rs`), what
//! the agent-only (Docker gateway) listener serves, the development-mode
//! Host check against DNS rebinding, and off-host redirects.

mod connections;
mod raw;

use molecule_client::{Client, Method};
use std::net::{IpAddr, Ipv4Addr};

use crate::start;
use raw::exchange;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[tokio::test]
async fn metric_labels_come_from_a_closed_set() {
    let t = start().await;
    for i in 0..200 {
        let method = Method::from_bytes(format!("M{i}X").as_bytes()).unwrap();
        for path in ["/health".to_string(), format!("/nope/{i}")] {
            let r = t.client.raw(method.clone(), path).send().await.unwrap();
            assert!(r.status >= 400, "a custom method is refused");
        }
        let r = t
            .client
            .raw(Method::GET, format!("/nope-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status, 404);
    }
    let (_, text) = metrics_text(&t.client).await;
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("molecule_http_requests_total{"))
        .collect();
    assert!(
        series.len() <= 6,
        "600 distinct methods/paths must not make 600 series: {}",
        series.len()
    );
    assert!(
        series
            .iter()
            .all(|l| !l.contains("M1") && !l.contains("nope")),
        "labels never carry what the client sent: {series:?}"
    );
    assert!(
        series
            .iter()
            .any(|l| l.contains("method=\"other\"") && l.contains("path=\"unmatched\"")),
        "{series:?}"
    );
}

async fn metrics_text(client: &Client) -> (u16, String) {
    let r = client.raw(Method::GET, "/metrics").send().await.unwrap();
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

#[tokio::test]
async fn trailing_slash_redirects_never_leave_the_host() {
    let t = start().await;
    for path in [
        "//evil.example/",
        "///evil.example/",
        "/\\evil.example/",
        "//evil.example/x/",
    ] {
        let r = exchange(
            LOOPBACK,
            t.server.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1"),
        )
        .await;
        assert_eq!(r.status, 404, "{path} → {:?}", r.header("location"));
        assert_eq!(r.header("location"), None);
    }
    let r = exchange(
        LOOPBACK,
        t.server.addr,
        "GET /health/?a=1 HTTP/1.1\r\nHost: 127.0.0.1",
    )
    .await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("/health?a=1"));
}
