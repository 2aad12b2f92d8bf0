//! Memories (api-contract §5.9): the key/value store with TTL, scoped
//! memories with the visibility matrix across a three-level hierarchy,
//! namespaces and full-text search.

use crate::{TestServer, call, start, start_with};
use molecule_client::{Client, Method};
use molecule_server::clock::Clock;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

async fn workspace(t: &TestServer, name: &str, parent: Option<Uuid>) -> (Uuid, Client) {
    let id = t.create(name, parent).await;
    let token = t.register(id).await;
    (id, t.as_workspace(id, &token))
}

async fn commit(c: &Client, ws: Uuid, content: &str, scope: &str) -> (u16, Value) {
    call(
        c,
        Method::POST,
        &format!("/workspaces/{ws}/memories"),
        Some(json!({"content": content, "scope": scope})),
    )
    .await
}

async fn contents(c: &Client, ws: Uuid, query: &str) -> BTreeSet<String> {
    let (s, rows) = call(
        c,
        Method::GET,
        &format!("/workspaces/{ws}/memories{query}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{rows}");
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["content"].as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn memories_visibility_matrix_across_three_levels() {
    let t = start().await;
    let (root, rc) = workspace(&t, "root", None).await;
    let (a, ac) = workspace(&t, "a", Some(root)).await;
    let (b, bc) = workspace(&t, "b", Some(root)).await;
    let (a1, a1c) = workspace(&t, "a1", Some(a)).await;
    let (other, oc) = workspace(&t, "other-root", None).await;
    let all = [
        (root, &rc, "root"),
        (a, &ac, "a"),
        (b, &bc, "b"),
        (a1, &a1c, "a1"),
        (other, &oc, "other"),
    ];
    for (id, c, name) in all {
        assert_eq!(
            commit(c, id, &format!("{name} local"), "LOCAL").await.0,
            201
        );
        assert_eq!(commit(c, id, &format!("{name} team"), "TEAM").await.0, 201);
    }
    let (s, body) = commit(&rc, root, "root global", "GLOBAL").await;
    assert_eq!(
        (s, body["scope"].as_str(), body["namespace"].as_str()),
        (201, Some("GLOBAL"), Some("general"))
    );
    let (s, body) = commit(&ac, a, "a global", "GLOBAL").await;
    assert_eq!(
        (s, body["error"].as_str()),
        (403, Some("only root workspaces can write GLOBAL memories"))
    );

    // TEAM: a child reads its parent and the parent's children (itself
    // included); a root reads itself and its direct children.
    let team = [
        (root, &rc, vec!["root team", "a team", "b team"]),
        (a, &ac, vec!["root team", "a team", "b team"]),
        (b, &bc, vec!["root team", "a team", "b team"]),
        (a1, &a1c, vec!["a team", "a1 team"]),
        (other, &oc, vec!["other team"]),
    ];
    for (id, c, want) in team {
        assert_eq!(
            contents(c, id, "?scope=TEAM").await,
            set(&want),
            "TEAM for {id}"
        );
    }
    for (id, c, name) in all {
        assert_eq!(
            contents(c, id, "?scope=LOCAL").await,
            set(&[&format!("{name} local")]),
            "LOCAL for {name}"
        );
        assert_eq!(
            contents(c, id, "?scope=GLOBAL").await,
            set(&["root global"]),
            "GLOBAL for {name}"
        );
    }
    // No scope: the caller's own rows of every scope.
    assert_eq!(
        contents(&rc, root, "").await,
        set(&["root local", "root team", "root global"])
    );
    // A removed author's TEAM rows disappear for its team.
    t.client.delete_workspace(b, true).await.unwrap();
    assert_eq!(
        contents(&ac, a, "?scope=TEAM").await,
        set(&["root team", "a team"])
    );
    // Another workspace's token reads nothing here.
    let (s, _) = call(
        &ac,
        Method::GET,
        &format!("/workspaces/{root}/memories"),
        None,
    )
    .await;
    assert_eq!(s, 401);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn memories_full_text_namespaces_delete_and_validation() {
    let t = start().await;
    let (ws, c) = workspace(&t, "ws", None).await;
    let (other, oc) = workspace(&t, "other", None).await;
    let path = format!("/workspaces/{ws}/memories");
    for (content, ns) in [
        ("The release pipelines are green", "ops"),
        ("Customer asked about invoices", "sales"),
        ("Pipeline credentials rotate monthly", "ops"),
        ("100% coverage_goal", "general"),
    ] {
        let (s, _) = call(
            &c,
            Method::POST,
            &path,
            Some(json!({"content": content, "scope": "LOCAL", "namespace": ns})),
        )
        .await;
        assert_eq!(s, 201);
    }
    assert_eq!(
        contents(&c, ws, "?q=pipeline").await,
        set(&[
            "The release pipelines are green",
            "Pipeline credentials rotate monthly"
        ])
    );
    assert_eq!(
        contents(&c, ws, "?q=pipelines%20green").await,
        set(&["The release pipelines are green"])
    );
    assert_eq!(
        contents(&c, ws, "?q=invoice&namespace=sales").await,
        set(&["Customer asked about invoices"])
    );
    assert!(
        contents(&c, ws, "?q=invoice&namespace=ops")
            .await
            .is_empty()
    );
    assert_eq!(
        contents(&c, ws, "?q=%25").await,
        set(&["100% coverage_goal"]),
        "1 char: literal substring"
    );
    for q in ["%22", "OR%20AND", "*", "NEAR(a%20b)", "a%3Ab"] {
        let (s, _) = call(&c, Method::GET, &format!("{path}?q={q}"), None).await;
        assert_eq!(s, 200, "{q}");
    }
    for bad in [
        json!({"scope": "LOCAL"}),
        json!({"content": "x", "scope": "PUBLIC"}),
        json!({"content": "x", "scope": "LOCAL", "namespace": "n".repeat(51)}),
    ] {
        let (s, body) = call(&c, Method::POST, &path, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {body}");
    }
    let (_, rows) = call(&c, Method::GET, &path, None).await;
    assert_eq!(
        rows.as_array().unwrap().len(),
        4,
        "failed requests changed nothing"
    );
    let id = rows[0]["id"].as_str().unwrap().to_string();
    let (s, body) = call(
        &oc,
        Method::DELETE,
        &format!("/workspaces/{other}/memories/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (404, Some("memory not found or not owned by this workspace"))
    );
    let (s, _) = call(&c, Method::DELETE, &format!("{path}/not-a-uuid"), None).await;
    assert_eq!(s, 404);
    // Oversized and malformed bodies are refused before anything is written.
    let big = json!({"content": "x".repeat(2 << 20), "scope": "LOCAL"});
    assert_eq!(call(&c, Method::POST, &path, Some(big)).await.0, 413);
    let r = c
        .raw(Method::POST, path.clone())
        .header("content-type", "application/json")
        .body("{\"content\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let (s, body) = call(&c, Method::GET, "/workspaces/not-a-uuid/memories", None).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (404, Some("workspace not found"))
    );
    let (s, body) = call(&c, Method::DELETE, &format!("{path}/{id}"), None).await;
    assert_eq!((s, body), (200, json!({"status": "deleted"})));
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn memory_kv_with_ttl_and_validation() {
    let clock = Clock::adjustable();
    let t = start_with(|c| c.clock = clock.clone()).await;
    let (ws, c) = workspace(&t, "ws", None).await;
    let path = format!("/workspaces/{ws}/memory");
    let (s, body) = call(
        &c,
        Method::POST,
        &path,
        Some(json!({"key": "plan", "value": {"steps": [1, 2]}})),
    )
    .await;
    assert_eq!((s, body), (200, json!({"status": "ok", "key": "plan"})));
    let (s, _) = call(
        &c,
        Method::POST,
        &path,
        Some(json!({"key": "flash", "value": "soon gone", "ttl_seconds": 1})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, e) = call(&c, Method::GET, &format!("{path}/flash"), None).await;
    assert_eq!((s, e["value"].as_str()), (200, Some("soon gone")));
    assert!(e["expires_at"].is_string());
    let (_, list) = call(&c, Method::GET, &path, None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    clock.advance(Duration::from_secs(2));
    let (s, e) = call(&c, Method::GET, &format!("{path}/flash"), None).await;
    assert_eq!((s, e["error"].as_str()), (404, Some("key not found")));
    let (_, list) = call(&c, Method::GET, &path, None).await;
    assert_eq!(list[0]["key"], "plan");
    assert!(list[0].get("expires_at").is_none());
    for (bad, want) in [
        (json!({"key": "", "value": 1}), "key is required"),
        (json!({"key": "k"}), "value is required"),
        (
            json!({"key": "k", "value": 1, "ttl_seconds": -5}),
            "ttl_seconds",
        ),
        (
            json!({"key": "k", "value": 1, "ttl_seconds": "x"}),
            "invalid request body",
        ),
    ] {
        let (s, body) = call(&c, Method::POST, &path, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}");
        assert!(
            body["error"].as_str().unwrap().starts_with(want),
            "{bad}: {body}"
        );
    }
    let (s, body) = call(&c, Method::DELETE, &format!("{path}/never-existed"), None).await;
    assert_eq!((s, body), (200, json!({"status": "deleted"})));
    let (s, _) = call(&c, Method::GET, &format!("{path}/k"), None).await;
    assert_eq!(s, 404, "rejected writes stored nothing");
    t.server.shutdown().await.unwrap();
}
