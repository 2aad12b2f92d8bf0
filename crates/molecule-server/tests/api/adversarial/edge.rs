//! Adversarial tests: the edge (issue 12, items 3, 4, 7, 8, 9): metric
//! label cardinality, connection caps and timeouts (`connections.rs`), what
//! the agent-only (Docker gateway) listener serves, the development-mode
//! Host check against DNS rebinding, and off-host redirects.

mod connections;
mod raw;

use molecule_client::{Client, Method};
use molecule_server::config::HostName;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::{call, start, start_with};
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

/// A server with the agent-only listener on 127.0.0.2 (what the Docker
/// gateway listener serves), and a client for that listener.
async fn with_agent_listener() -> (crate::TestServer, Client, SocketAddr) {
    let t = start_with(|c| c.agent_listen_ip = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))).await;
    let gateway = t
        .server
        .app
        .listen_addrs()
        .gateway
        .expect("agent listener bound");
    (t, Client::new(format!("http://{gateway}")), gateway)
}

#[tokio::test]
async fn the_agent_listener_serves_agent_routes_and_no_admin_route() {
    let (t, gateway, _) = with_agent_listener().await;
    let id = t.create("agent", None).await;
    let other = t.create("victim", None).await;
    // Agent routes work there.
    let token = {
        let r = gateway
            .register(&molecule_types::dto::RegisterRequest {
                id: id.to_string(),
                url: "http://agent.test:8000".into(),
                agent_card: json!({"name": "agent"}),
            })
            .await
            .expect("register through the agent listener");
        r.auth_token.expect("token")
    };
    let agent = gateway
        .clone()
        .with_workspace_id(Some(id))
        .with_token(Some(token.clone()));
    for (method, path) in [
        (Method::GET, "/health".to_string()),
        (Method::GET, format!("/workspaces/{id}")),
        (Method::GET, format!("/workspaces/{id}/config")),
        (Method::GET, format!("/workspaces/{id}/memory")),
        (Method::GET, format!("/workspaces/{id}/activity")),
        (Method::GET, format!("/workspaces/{id}/schedules")),
        (Method::GET, format!("/workspaces/{id}/approvals")),
        (Method::GET, format!("/registry/{id}/peers")),
    ] {
        let (status, body) = call(&agent, method.clone(), &path, None).await;
        assert_eq!(status, 200, "{method} {path} on the agent listener: {body}");
    }
    // Admin routes do not exist there, with or without credentials.
    for (method, path, body) in [
        (Method::GET, "/workspaces".to_string(), None),
        (
            Method::POST,
            "/workspaces".to_string(),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("/workspaces/{other}"), None),
        (
            Method::PATCH,
            format!("/workspaces/{other}"),
            Some(json!({"name": "y"})),
        ),
        (Method::POST, format!("/workspaces/{other}/restart"), None),
        (
            Method::GET,
            format!("/admin/workspaces/{other}/test-token"),
            None,
        ),
        (Method::GET, "/admin/liveness".to_string(), None),
        (Method::GET, "/admin/secrets".to_string(), None),
        (Method::GET, "/settings/secrets".to_string(), None),
        (
            Method::PUT,
            "/settings/secrets".to_string(),
            Some(json!({"key": "K", "value": "v"})),
        ),
        (Method::GET, "/metrics".to_string(), None),
        (Method::GET, "/events".to_string(), None),
        (Method::GET, format!("/events/{other}"), None),
        (Method::GET, "/approvals/pending".to_string(), None),
        (Method::GET, "/readyz".to_string(), None),
    ] {
        for client in [&gateway, &agent] {
            let (status, _) = call(client, method.clone(), &path, body.clone()).await;
            assert_eq!(
                status, 404,
                "{method} {path} must not exist on the agent listener"
            );
        }
    }
    // The main listener still serves them, and the victim is untouched.
    let (status, _) = call(
        &t.client,
        Method::GET,
        &format!("/workspaces/{other}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(&t.client, Method::GET, "/workspaces", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn development_mode_refuses_foreign_host_headers() {
    let t = start_with(|c| c.allowed_hosts = vec![HostName::parse("molecule.test").unwrap()]).await;
    let addr = t.server.addr;
    let id = t.create("ws", None).await;
    for head in [
        "GET /health HTTP/1.1\r\nHost: evil.example".to_string(),
        "GET /workspaces HTTP/1.1\r\nHost: evil.example:8080".to_string(),
        format!("GET /admin/workspaces/{id}/test-token HTTP/1.1\r\nHost: evil.example"),
        format!("GET /workspaces/{id}/secrets/values HTTP/1.1\r\nHost: 127.0.0.1.evil.example"),
        "GET /workspaces HTTP/1.1\r\nHost: localhost.evil.example".to_string(),
        // A rebound page: its origin and Host agree (the old same-host rule).
        "GET /workspaces HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example".to_string(),
        "POST /workspaces HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\n\
         Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"name\":\"x\"}"
            .to_string(),
        // An absolute-form target naming another host.
        "GET http://evil.example/workspaces HTTP/1.1\r\nHost: 127.0.0.1".to_string(),
    ] {
        let r = exchange(LOOPBACK, addr, &head).await;
        assert_eq!(r.status, 403, "{head:?} → {}", r.body);
        assert!(r.body.contains("host not allowed"), "{}", r.body);
    }
    let (_, list) = call(&t.client, Method::GET, "/workspaces", None).await;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "nothing was created"
    );
    for host in [
        "127.0.0.1",
        "127.0.0.1:8080",
        "127.9.9.9",
        "localhost",
        "LOCALHOST:3000",
        "[::1]:8080",
        "molecule.test",
        "molecule.test:443",
    ] {
        let r = exchange(
            LOOPBACK,
            addr,
            &format!("GET /workspaces HTTP/1.1\r\nHost: {host}"),
        )
        .await;
        assert_eq!(r.status, 200, "Host {host} is allowed: {}", r.body);
    }
    // Same host on an allowed name still counts as same-origin for CORS.
    let r = exchange(
        LOOPBACK,
        addr,
        "GET /workspaces HTTP/1.1\r\nHost: localhost:9999\r\nOrigin: http://localhost:9999",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
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
