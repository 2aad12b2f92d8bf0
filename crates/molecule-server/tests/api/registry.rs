use molecule_types::WorkspaceStatus;
use molecule_types::dto::{Heartbeat, RegisterRequest, UpdateCard};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

use crate::start;

/// The issue's "done when" scenario, written from the contract only.
#[tokio::test]
async fn two_roots_register_heartbeat_discover_and_watch() {
    let t = start().await;
    let mut stream = t.client.subscribe().await.unwrap();
    let a = t.create("alpha", None).await;
    let b = t.create("beta", None).await;
    let ta = t.register(a).await;
    let tb = t.register(b).await;
    let online = stream
        .next_matching(
            |e| e.event == "WORKSPACE_ONLINE" && e.workspace_id == b.to_string(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let online = online.expect("WORKSPACE_ONLINE on /ws");
    assert_eq!(
        online.payload["url"],
        format!("http://agent-{}.test:8000", &b.to_string()[..8])
    );

    t.heartbeat(
        a,
        &ta,
        Heartbeat {
            active_tasks: 1,
            current_task: "writing spec".into(),
            ..Default::default()
        },
    )
    .await;
    let task = stream
        .next_matching(|e| e.event == "TASK_UPDATED", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("TASK_UPDATED");
    assert_eq!(
        task.payload,
        json!({"current_task": "writing spec", "active_tasks": 1})
    );

    let found = t.as_workspace(a, &ta).discover(b).await.unwrap();
    assert_eq!((found.id, found.name.as_str()), (b, "beta"));
    assert!(found.url.starts_with("http://agent-"));
    let found = t.as_workspace(b, &tb).discover(a).await.unwrap();
    assert_eq!(found.id, a);

    let peers = t.as_workspace(a, &ta).peers(a).await.unwrap();
    assert_eq!(
        peers.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![b],
        "roots are each other's peers"
    );
    assert_eq!(peers[0].status, WorkspaceStatus::Online);
    assert!(t.client.check_access(a, b).await.unwrap().allowed);

    let ws = t.client.get_workspace(a).await.unwrap();
    assert_eq!(
        (ws.status, ws.active_tasks, ws.current_task.as_str()),
        (WorkspaceStatus::Online, 1, "writing spec")
    );
    let events = t.client.events(None).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert!(
        kinds.contains(&"WORKSPACE_ONLINE") && kinds.contains(&"WORKSPACE_PROVISIONING"),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains(&"TASK_UPDATED"),
        "TASK_UPDATED is broadcast-only"
    );
    assert!(
        events
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at),
        "newest first"
    );
}

#[tokio::test]
async fn register_issues_one_token_then_requires_it() {
    let t = start().await;
    let id = t.create("w", None).await;
    let token = t.register(id).await;
    assert_eq!(token.len(), 43);
    let req = RegisterRequest {
        id: id.to_string(),
        url: "http://agent.test:8000".into(),
        agent_card: json!({}),
    };
    let err = t.client.register(&req).await.unwrap_err();
    assert_eq!(
        (
            err.status(),
            err.to_string().contains("missing workspace auth token")
        ),
        (Some(401), true)
    );
    let err = t
        .client
        .clone()
        .with_token(Some("wrong".into()))
        .register(&req)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    let again = t.as_workspace(id, &token).register(&req).await.unwrap();
    assert_eq!(
        (again.status.as_str(), again.auth_token),
        ("registered", None)
    );
    // Heartbeats are gated the same way.
    let hb = Heartbeat {
        workspace_id: id.to_string(),
        ..Default::default()
    };
    assert_eq!(
        t.client.heartbeat(&hb).await.unwrap_err().status(),
        Some(401)
    );
    let other = t.create("other", None).await;
    let other_token = t.register(other).await;
    assert_eq!(
        t.as_workspace(other, &other_token)
            .heartbeat(&hb)
            .await
            .unwrap_err()
            .status(),
        Some(401),
        "another workspace's token"
    );
}

#[tokio::test]
async fn register_rejects_internal_ip_urls_and_removed_workspaces() {
    let t = start().await;
    let id = t.create("w", None).await;
    for url in [
        "http://127.0.0.1:8000",
        "http://169.254.169.254/",
        "http://10.0.0.5:80",
        "ftp://agent",
    ] {
        let req = RegisterRequest {
            id: id.to_string(),
            url: url.into(),
            agent_card: json!({}),
        };
        assert_eq!(
            t.client.register(&req).await.unwrap_err().status(),
            Some(400),
            "{url}"
        );
    }
    t.client.delete_workspace(id, true).await.unwrap();
    let req = RegisterRequest {
        id: id.to_string(),
        url: "http://agent.test".into(),
        agent_card: json!({}),
    };
    let err = t.client.register(&req).await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(410),
        "a removed workspace cannot come back"
    );
    assert_eq!(
        t.client.get_workspace(id).await.unwrap().status,
        WorkspaceStatus::Removed
    );
}

#[tokio::test]
async fn development_registration_creates_unknown_workspaces() {
    let t = start().await;
    let id = Uuid::new_v4();
    t.register(id).await;
    let ws = t.client.get_workspace(id).await.unwrap();
    assert_eq!(
        (ws.name, ws.status),
        (id.to_string(), WorkspaceStatus::Online)
    );
}

#[tokio::test]
async fn heartbeat_degrades_and_recovers_with_hysteresis() {
    let t = start().await;
    let id = t.create("w", None).await;
    let token = t.register(id).await;
    let hb = |rate: f64| Heartbeat {
        error_rate: rate,
        sample_error: "boom".into(),
        ..Default::default()
    };
    t.heartbeat(id, &token, hb(0.6)).await;
    let ws = t.client.get_workspace(id).await.unwrap();
    assert_eq!(ws.status, WorkspaceStatus::Degraded);
    assert!(ws.status_reason.unwrap().contains("boom"));
    t.heartbeat(id, &token, hb(0.3)).await;
    assert_eq!(
        t.client.get_workspace(id).await.unwrap().status,
        WorkspaceStatus::Degraded,
        "between thresholds nothing changes"
    );
    t.heartbeat(id, &token, hb(0.05)).await;
    let ws = t.client.get_workspace(id).await.unwrap();
    assert_eq!(
        (ws.status, ws.status_reason),
        (WorkspaceStatus::Online, None)
    );
    let events = t.client.events(Some(id)).await.unwrap();
    let degraded = events
        .iter()
        .find(|e| e.event_type == "WORKSPACE_DEGRADED")
        .expect("degraded event");
    assert_eq!(degraded.payload["sample_error"], "boom");
    // Unknown ids are accepted and change nothing.
    let unknown = molecule_types::dto::Heartbeat {
        workspace_id: Uuid::new_v4().to_string(),
        ..Default::default()
    };
    assert_eq!(t.client.heartbeat(&unknown).await.unwrap().status, "ok");
}

#[tokio::test]
async fn task_updated_only_when_the_task_changes() {
    let t = start().await;
    let id = t.create("w", None).await;
    let token = t.register(id).await;
    let mut stream = t.client.subscribe().await.unwrap();
    let beat = |task: &str| Heartbeat {
        current_task: task.into(),
        active_tasks: 1,
        ..Default::default()
    };
    t.heartbeat(id, &token, beat("one")).await;
    t.heartbeat(id, &token, beat("one")).await;
    t.heartbeat(id, &token, beat("two")).await;
    let mut seen = Vec::new();
    while let Some(e) = stream
        .next_matching(|e| e.event == "TASK_UPDATED", Duration::from_millis(500))
        .await
        .unwrap()
    {
        seen.push(e.payload["current_task"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["one", "two"]);
}

#[tokio::test]
async fn update_card_emits_event() {
    let t = start().await;
    let id = t.create("w", None).await;
    let token = t.register(id).await;
    let card = json!({"name": "w", "skills": [{"id": "s1"}]});
    let c = t.as_workspace(id, &token);
    assert_eq!(
        c.update_card(&UpdateCard {
            workspace_id: id.to_string(),
            agent_card: card.clone()
        })
        .await
        .unwrap()
        .status,
        "updated"
    );
    assert_eq!(
        t.client.get_workspace(id).await.unwrap().agent_card,
        Some(card.clone())
    );
    let events = t.client.events(Some(id)).await.unwrap();
    assert_eq!(events[0].event_type, "AGENT_CARD_UPDATED");
    assert_eq!(events[0].payload["agent_card"], card);
}

#[tokio::test]
async fn discovery_and_peers_follow_the_hierarchy() {
    let t = start().await;
    let root = t.create("root", None).await;
    let lead = t.create("lead", Some(root)).await;
    let dev1 = t.create("dev1", Some(lead)).await;
    let dev2 = t.create("dev2", Some(lead)).await;
    let ops = t.create("ops", Some(root)).await;
    let ops1 = t.create("ops1", Some(ops)).await;
    let tokens: Vec<String> = futures_join(&t, &[root, lead, dev1, dev2, ops, ops1]).await;
    let (t_dev1, t_ops1) = (&tokens[2], &tokens[5]);

    let peers = t.as_workspace(lead, &tokens[1]).peers(lead).await.unwrap();
    let ids: Vec<Uuid> = peers.iter().map(|p| p.id).collect();
    assert_eq!(
        ids,
        vec![ops, dev1, dev2, root],
        "siblings, children, parent"
    );

    assert!(
        t.as_workspace(dev1, t_dev1).discover(dev2).await.is_ok(),
        "siblings"
    );
    assert!(
        t.as_workspace(dev1, t_dev1).discover(root).await.is_ok(),
        "skip-level ancestor"
    );
    let denied = t
        .as_workspace(dev1, t_dev1)
        .discover(ops1)
        .await
        .unwrap_err();
    assert_eq!(denied.status(), Some(403), "cousins");
    assert!(
        denied
            .to_string()
            .contains("not authorized to discover this workspace")
    );
    assert_eq!(
        t.as_workspace(ops1, t_ops1)
            .discover(Uuid::new_v4())
            .await
            .unwrap_err()
            .status(),
        Some(403),
        "unknown target"
    );
    let no_header = t.client.discover(dev2).await.unwrap_err();
    assert_eq!(no_header.status(), Some(400));
    assert!(
        !t.client.check_access(dev1, ops).await.unwrap().allowed,
        "nephew to uncle"
    );
    assert!(t.client.check_access(ops, ops).await.unwrap().allowed);
}

async fn futures_join(t: &crate::TestServer, ids: &[Uuid]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(t.register(*id).await);
    }
    out
}
