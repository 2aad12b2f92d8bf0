use molecule_client::Method;

use crate::{start, start_with};

#[tokio::test]
async fn security_headers_on_every_response() {
    let t = start().await;
    for path in ["/health", "/nope", "/workspaces/not-a-uuid"] {
        let r = t.client.request(Method::GET, path, None).await.unwrap();
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(
            r.header("content-security-policy"),
            Some("default-src 'self'")
        );
        assert!(r.header("strict-transport-security").is_some());
    }
}

#[tokio::test]
async fn rate_limit_with_headers_and_429() {
    let t = start_with(|c| c.rate_limit = 5).await;
    let mut last = None;
    for i in 0..5 {
        let r = t
            .client
            .request(Method::GET, "/health", None)
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
        assert_eq!(
            r.header("x-ratelimit-remaining"),
            Some((4 - i).to_string().as_str())
        );
        last = Some(r);
    }
    assert!(last.unwrap().header("x-ratelimit-reset").is_some());
    let r = t
        .client
        .request(Method::GET, "/health", None)
        .await
        .unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.json().unwrap()["error"], "rate limit exceeded");
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        r.header("x-frame-options"),
        Some("DENY"),
        "429s carry security headers too"
    );
    let metrics = t.server.app.metrics().render(&[]);
    assert!(
        metrics.contains("status=\"429\""),
        "429s are counted: {metrics}"
    );
}

#[tokio::test]
async fn cors_allows_listed_origins_and_refuses_others() {
    let t = start().await;
    let r = t
        .client
        .raw(Method::GET, "/health")
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let r = t
        .client
        .raw(Method::GET, "/health")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!((r.status, r.body.len()), (403, 0));
    let r = t
        .client
        .raw(Method::OPTIONS, "/workspaces")
        .header("origin", "http://localhost:3001")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 204);
    assert!(
        r.header("access-control-allow-headers")
            .unwrap()
            .contains("X-Workspace-ID")
    );
}

#[tokio::test]
async fn tenant_guard_when_org_id_is_set() {
    let t = start_with(|c| c.org_id = Some("org-1".into())).await;
    assert_eq!(
        t.client
            .request(Method::GET, "/health", None)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        t.client
            .request(Method::GET, "/workspaces", None)
            .await
            .unwrap()
            .status,
        404
    );
    let r = t
        .client
        .raw(Method::GET, "/workspaces")
        .header("x-molecule-org-id", "org-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let r = t
        .client
        .raw(Method::GET, "/workspaces")
        .header("fly-replay-src", "instance=x;state=org-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let t = start().await;
    let id = t.create("w", None).await;
    t.client.get_workspace(id).await.unwrap();
    let text = t.client.metrics_text().await.unwrap();
    assert!(text.contains("molecule_http_requests_total{method=\"GET\",path=\"/workspaces/{id}\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("molecule_websocket_connections_active"));
}

#[tokio::test]
async fn graceful_shutdown_flushes_and_restarts_on_the_same_database() {
    use molecule_types::dto::{CreateWorkspace, Heartbeat, RegisterRequest};
    let (db, _dir) = crate::fresh_database().await;
    let boot = |db| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = molecule_server::Server::start(molecule_server::Config::for_tests(db), listener)
            .await
            .unwrap();
        let c = molecule_client::Client::new(s.url());
        (s, c)
    };
    let (s, c) = boot(db.clone()).await;
    let id = c
        .create_workspace(&CreateWorkspace {
            name: "keep".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let reg = RegisterRequest {
        id: id.to_string(),
        url: "http://k.test".into(),
        agent_card: serde_json::json!({}),
    };
    let token = c.register(&reg).await.unwrap().auth_token.unwrap();
    let hb = Heartbeat {
        workspace_id: id.to_string(),
        uptime_seconds: 77,
        ..Default::default()
    };
    c.clone()
        .with_token(Some(token.clone()))
        .heartbeat(&hb)
        .await
        .unwrap();
    s.shutdown().await.unwrap();

    let (s, c) = boot(db).await;
    let ws = c.get_workspace(id).await.unwrap();
    assert_eq!(
        ws.uptime_seconds, 77,
        "buffered heartbeat written at shutdown"
    );
    assert_eq!(
        ws.status,
        molecule_types::WorkspaceStatus::Online,
        "a restart does not mark live workspaces offline"
    );
    assert!(
        c.with_token(Some(token))
            .with_workspace_id(Some(id))
            .workspace_state(id)
            .await
            .is_ok(),
        "tokens survive restarts"
    );
    s.shutdown().await.unwrap();
}
