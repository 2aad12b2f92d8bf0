//! Approvals (api-contract §5.11): create with escalation events, list,
//! decide once, pending across workspaces, expiry by the background task,
//! and who may decide in production.

use crate::{call, eventually, start, start_with, ticks};
use molecule_client::Method;
use molecule_server::clock::Clock;
use molecule_server::config::Mode;
use molecule_types::dto::CreateWorkspace;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn approvals_create_list_decide_and_events() {
    let t = start().await;
    let parent = t.create("lead", None).await;
    let child = t.create("dev", Some(parent)).await;
    let token = t.register(child).await;
    let c = t.as_workspace(child, &token);
    let base = format!("/workspaces/{child}/approvals");
    let (s, body) = call(&c, Method::POST, &base, Some(json!({"action": "deploy to prod", "task_id": "t-1", "reason": "release", "context": {"env": "prod"}}))).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["status"], "pending");
    let id = body["approval_id"].as_str().unwrap().to_string();
    for bad in [
        json!({"reason": "no action"}),
        json!({"action": "x", "context": [1]}),
    ] {
        assert_eq!(call(&c, Method::POST, &base, Some(bad)).await.0, 400);
    }
    let r = c
        .raw(Method::POST, base.clone())
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let wrong = t.as_workspace(parent, "not-a-token");
    assert_eq!(
        call(&wrong, Method::POST, &base, Some(json!({"action": "x"})))
            .await
            .0,
        401
    );
    let (_, list) = call(&c, Method::GET, &base, None).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "rejected requests stored nothing"
    );
    let events = t.client.events(Some(child)).await.unwrap();
    let req = events
        .iter()
        .find(|e| e.event_type == "APPROVAL_REQUESTED")
        .expect("requested");
    assert_eq!(
        (
            req.payload["approval_id"].as_str(),
            req.payload["action"].as_str()
        ),
        (Some(id.as_str()), Some("deploy to prod"))
    );
    let esc = t.client.events(Some(parent)).await.unwrap();
    let esc = esc
        .iter()
        .find(|e| e.event_type == "APPROVAL_ESCALATED")
        .expect("escalated to the parent");
    assert_eq!(esc.payload["from_workspace_id"], json!(child));

    let (s, pending) = call(&t.client, Method::GET, "/approvals/pending", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            pending[0]["workspace_name"].as_str(),
            pending.as_array().unwrap().len()
        ),
        (Some("dev"), 1)
    );

    let decide = format!("{base}/{id}/decide");
    let (s, _) = call(
        &c,
        Method::POST,
        &decide,
        Some(json!({"decision": "maybe"})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, body) = call(
        &c,
        Method::POST,
        &decide,
        Some(json!({"decision": "approved"})),
    )
    .await;
    assert_eq!(
        (s, body),
        (200, json!({"status": "approved", "approval_id": id}))
    );
    let (s, body) = call(
        &c,
        Method::POST,
        &decide,
        Some(json!({"decision": "denied"})),
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (404, Some("approval not found or already decided"))
    );
    let (s, _) = call(
        &c,
        Method::POST,
        &format!("{base}/not-a-uuid/decide"),
        Some(json!({"decision": "denied"})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, list) = call(&c, Method::GET, &base, None).await;
    assert_eq!(s, 200);
    assert_eq!(
        (list[0]["status"].as_str(), list[0]["decided_by"].as_str()),
        (Some("approved"), Some("human"))
    );
    let events = t.client.events(Some(child)).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "APPROVAL_APPROVED" && e.payload["decided_by"] == "human")
    );
    let (_, pending) = call(&t.client, Method::GET, "/approvals/pending", None).await;
    assert_eq!(pending, json!([]));
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn approvals_expire_on_time_without_anyone_listing() {
    let clock = Clock::adjustable();
    let t = start_with(|c| {
        c.approval_ttl = Duration::from_secs(3600);
        c.clock = clock.clone();
    })
    .await;
    let ws = t.create("ws", None).await;
    let token = t.register(ws).await;
    let c = t.as_workspace(ws, &token);
    let base = format!("/workspaces/{ws}/approvals");
    let (s, _) = call(&c, Method::POST, &base, Some(json!({"action": "wait"}))).await;
    assert_eq!(s, 201);
    ticks(&t.server.app, "approval-expiry", 2).await;
    let (_, list) = call(&c, Method::GET, &base, None).await;
    assert_eq!(list[0]["status"], "pending", "not expired before its time");
    clock.advance(Duration::from_secs(3601));
    t.server.app.tasks().activate("approval-expiry");
    let row = eventually(Duration::from_secs(5), || async {
        let (_, list) = call(&c, Method::GET, &base, None).await;
        (list[0]["status"] == "denied").then(|| list[0].clone())
    })
    .await
    .expect("expired by the background task");
    assert_eq!(row["decided_by"], "auto-expired");
    assert!(row["decided_at"].is_string());
    // The row is written before its event: wait for the event.
    let denied = eventually(Duration::from_secs(5), || async {
        let events = t.client.events(Some(ws)).await.unwrap();
        events
            .iter()
            .any(|e| e.event_type == "APPROVAL_DENIED" && e.payload["decided_by"] == "auto-expired")
            .then_some(())
    })
    .await;
    assert!(denied.is_some(), "an APPROVAL_DENIED event by auto-expiry");
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn approvals_in_production_are_not_decided_by_their_requester() {
    const ADMIN: &str = "admin-token-0123456789";
    let t = start_with(|c| {
        c.mode = Mode::Production;
        c.admin_token = Some(ADMIN.into());
    })
    .await;
    let admin = t.client.clone().with_token(Some(ADMIN.into()));
    let mk = |name: &str, parent| CreateWorkspace {
        name: name.into(),
        parent_id: parent,
        ..Default::default()
    };
    let lead = admin.create_workspace(&mk("lead", None)).await.unwrap();
    let dev = admin
        .create_workspace(&mk("dev", Some(lead.id)))
        .await
        .unwrap();
    let lead_c = t.as_workspace(lead.id, lead.auth_token.as_deref().unwrap());
    let dev_c = t.as_workspace(dev.id, dev.auth_token.as_deref().unwrap());
    let dev = dev.id;
    let base = format!("/workspaces/{dev}/approvals");
    let mut ids = Vec::new();
    for action in ["one", "two"] {
        let (s, body) = call(&dev_c, Method::POST, &base, Some(json!({"action": action}))).await;
        assert_eq!(s, 201);
        ids.push(body["approval_id"].as_str().unwrap().to_string());
    }
    let decide = |id: &str| format!("{base}/{id}/decide");
    let (s, _) = call(
        &dev_c,
        Method::POST,
        &decide(&ids[0]),
        Some(json!({"decision": "approved"})),
    )
    .await;
    assert_eq!(s, 403, "the requester cannot approve itself");
    let (s, _) = call(
        &t.client,
        Method::POST,
        &decide(&ids[0]),
        Some(json!({"decision": "approved"})),
    )
    .await;
    assert_eq!(s, 403, "nor can an anonymous caller");
    let (s, body) = call(
        &lead_c,
        Method::POST,
        &decide(&ids[0]),
        Some(json!({"decision": "approved", "decided_by": "lead"})),
    )
    .await;
    assert_eq!(
        (s, body["status"].as_str()),
        (200, Some("approved")),
        "the parent decides"
    );
    let (s, _) = call(
        &admin,
        Method::POST,
        &decide(&ids[1]),
        Some(json!({"decision": "denied"})),
    )
    .await;
    assert_eq!(s, 200, "an operator decides");
    let (_, list) = call(&dev_c, Method::GET, &base, None).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] != "pending")
    );
    t.server.shutdown().await.unwrap();
}
