//! Adversarial tests: outbound (issue 12, item 2, SSRF through agent
//! URLs). A "secret" HTTP service on 127.0.0.1 stands for what a URL
//! someone supplies must not reach (a loopback-only admin port, a metadata
//! service). A production server must never connect to it, whatever name
//! leads there, unless the operator allow-lists loopback; no server may
//! call its own listener.

use axum::Router;
use molecule_client::Method;
use molecule_server::app::a2a::Caller;
use molecule_server::app::outbound::Network;
use molecule_server::config::Config;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::a2a::send_body;
use crate::{TestServer, call, start, start_with};

const REFUSED: &str = "workspace URL refused by the outbound policy";

/// A loopback-only HTTP service that answers every request with its
/// secret and counts the requests that reached it.
struct Secret {
    port: u16,
    text: String,
    hits: Arc<AtomicUsize>,
}

async fn secret_service() -> Secret {
    let text = format!("secret-{}", Uuid::new_v4().simple());
    let hits = Arc::new(AtomicUsize::new(0));
    let (answer, counter) = (text.clone(), hits.clone());
    let app = Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let answer = answer.clone();
        async move { axum::Json(json!({ "jsonrpc": "2.0", "id": "req-1", "result": answer })) }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Secret { port, text, hits }
}

/// Production mode with an admin token and `allow` as
/// `MOLECULE_OUTBOUND_ALLOW`.
fn production(c: &mut Config, allow: &str) {
    crate::production(c);
    c.outbound_allow = Network::parse_list(allow).unwrap();
}

/// An external workspace at `url`, created the way an operator does: the
/// one place that knows how a test gets a workspace (and, if ever needed,
/// its token) into a server. `Err` carries a refusal's status and body.
async fn external_at(t: &TestServer, url: &str) -> Result<Uuid, (u16, Value)> {
    let body = json!({ "name": "external", "external": true, "url": url });
    let (status, v) = call(&t.admin(), Method::POST, "/workspaces", Some(body)).await;
    match v["id"].as_str().and_then(|id| id.parse().ok()) {
        Some(id) if status == 201 => Ok(id),
        _ => Err((status, v)),
    }
}

/// Give `id` a URL the API would refuse today: one stored before the
/// policy existed, or a name that resolved elsewhere when it was checked
/// (DNS rebinding cannot be staged in a test; the store write can).
async fn store_url(t: &TestServer, id: Uuid, url: &str) {
    t.store()
        .await
        .workspace_set_url(id, url, chrono::Utc::now())
        .await
        .unwrap();
    t.server.app.forget_target(id);
}

/// The operator calls `id` through the proxy: status and body text.
async fn proxy(t: &TestServer, id: Uuid) -> (u16, String) {
    let r = t.admin().a2a(id, &send_body("hello")).await.unwrap();
    (r.status, r.text())
}

fn own_port(t: &TestServer) -> u16 {
    t.server.addr.port()
}

#[tokio::test]
async fn production_refuses_loopback_names_when_they_are_supplied() {
    let secret = secret_service().await;
    let t = start_with(|c| production(c, "")).await;
    let id = external_at(&t, "http://agent.test:8000").await.unwrap();
    let p = secret.port;
    for url in [
        format!("http://localhost:{p}"),
        format!("http://LOCALHOST:{p}"),
        format!("http://localhost.:{p}/a2a"),
        format!("http://0:{p}"),
        format!("http://127.1:{p}"),
        format!("http://[::ffff:127.0.0.1]:{p}"),
    ] {
        let (status, body) = call(
            &t.client,
            Method::POST,
            "/registry/register",
            Some(json!({ "id": id, "url": url, "agent_card": {} })),
        )
        .await;
        assert_eq!(status, 400, "register {url}: {body}");
        let (status, body) = external_at(&t, &url).await.unwrap_err();
        assert_eq!(status, 400, "create {url}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("url host"),
            "{body}"
        );
    }
    let (status, body) = proxy(&t, id).await;
    assert!(!body.contains(&secret.text), "{status} {body}");
    assert_eq!(secret.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn production_checks_the_resolved_address_when_it_connects() {
    let secret = secret_service().await;
    let t = start_with(|c| production(c, "")).await;
    let id = external_at(&t, "http://agent.test:8000").await.unwrap();
    let p = secret.port;
    for url in [
        format!("http://localhost:{p}"),
        format!("http://LOCALHOST:{p}"),
        format!("http://0:{p}"),
        format!("http://127.1:{p}"),
        format!("http://127.0.0.1:{p}"),
        format!("http://[::ffff:127.0.0.1]:{p}"),
    ] {
        store_url(&t, id, &url).await;
        let (status, body) = proxy(&t, id).await;
        assert!(!body.contains(&secret.text), "{url} leaked: {body}");
        assert_eq!(status, 502, "{url}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], REFUSED, "{url}");
        // Platform components calling through the proxy core inherit the
        // check (delegation, scheduler, restart context).
        let internal = t
            .server
            .app
            .a2a_message(
                id,
                Caller::System("system:scheduler".into()),
                "hello",
                "m-1".into(),
                Duration::from_secs(5),
                None,
            )
            .await;
        assert!(
            internal.as_ref().is_err_and(|e| e.to_string() == REFUSED),
            "{url}: {internal:?}"
        );
        // So does the transcript, which asks the agent's URL too.
        let (status, body) = call(
            &t.admin(),
            Method::GET,
            &format!("/workspaces/{id}/transcript"),
            None,
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("workspace URL not allowed")),
            "{url}"
        );
    }
    assert_eq!(secret.hits.load(Ordering::SeqCst), 0, "nothing reached it");
}

#[tokio::test]
async fn the_allow_list_opens_loopback_but_never_the_platform_itself() {
    let secret = secret_service().await;
    let t = start_with(|c| production(c, "127.0.0.0/8, ::1/128")).await;
    let open = external_at(&t, &format!("http://localhost:{}", secret.port))
        .await
        .unwrap();
    let (status, body) = proxy(&t, open).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&secret.text), "allow-listed: {body}");

    for url in [
        format!("http://localhost:{}", own_port(&t)),
        format!("http://127.0.0.1:{}/workspaces", own_port(&t)),
    ] {
        let itself = external_at(&t, &url).await.unwrap();
        let (status, body) = proxy(&t, itself).await;
        assert_eq!(status, 502, "{url}: {body}");
        assert!(body.contains(REFUSED), "{url}: {body}");
    }
}

#[tokio::test]
async fn development_keeps_loopback_but_refuses_itself_and_metadata() {
    let secret = secret_service().await;
    let t = start().await;
    let open = t
        .client
        .create_workspace(&molecule_types::dto::CreateWorkspace {
            name: "local".into(),
            external: true,
            url: Some(format!("http://localhost:{}", secret.port)),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let r = t.client.a2a(open, &send_body("hi")).await.unwrap();
    assert!(r.text().contains(&secret.text), "{}", r.text());

    for url in [
        format!("http://localhost:{}", own_port(&t)),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://0:{}", secret.port),
    ] {
        store_url(&t, open, &url).await;
        let r = t.client.a2a(open, &send_body("hi")).await.unwrap();
        assert_eq!(r.status, 502, "{url}: {}", r.text());
        assert_eq!(r.json().unwrap()["error"], REFUSED, "{url}");
    }
    assert_eq!(secret.hits.load(Ordering::SeqCst), 1, "only the first call");
}
