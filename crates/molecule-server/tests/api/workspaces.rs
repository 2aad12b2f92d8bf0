use molecule_types::WorkspaceStatus;
use molecule_types::dto::CreateWorkspace;
use serde_json::json;
use uuid::Uuid;

use crate::start;

#[tokio::test]
async fn create_get_list_and_defaults() {
    let t = start().await;
    let created = t
        .client
        .create_workspace(&CreateWorkspace {
            name: "PM".into(),
            role: Some("product".into()),
            tier: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created.status, WorkspaceStatus::Provisioning);
    assert_eq!(
        created.awareness_namespace.as_deref(),
        Some(format!("workspace:{}", created.id).as_str())
    );
    assert_eq!(created.workspace_access.as_deref(), Some("none"));
    let ws = t.client.get_workspace(created.id).await.unwrap();
    assert_eq!(ws.name, "PM");
    assert_eq!(ws.role.as_deref(), Some("product"));
    assert_eq!(ws.tier, 1, "tier 0 becomes 1");
    assert_eq!(ws.runtime, "langgraph");
    assert_eq!(ws.url, "");
    assert!(ws.status_reason.is_some(), "provisioning carries a reason");
    let second = t.create("Dev", None).await;
    let list = t.client.list_workspaces().await.unwrap();
    assert_eq!(
        list.iter().map(|w| w.id).collect::<Vec<_>>(),
        vec![created.id, second],
        "ordered by creation"
    );
}

#[tokio::test]
async fn external_workspace_is_online_at_once() {
    let t = start().await;
    let req = CreateWorkspace {
        name: "Remote".into(),
        external: true,
        url: Some("https://remote.example/a2a".into()),
        ..Default::default()
    };
    let created = t.client.create_workspace(&req).await.unwrap();
    assert_eq!(created.status, WorkspaceStatus::Online);
    assert_eq!(created.external, Some(true));
    let ws = t.client.get_workspace(created.id).await.unwrap();
    assert_eq!(ws.status, WorkspaceStatus::Online);
    assert_eq!(
        ws.runtime, "external",
        "external:true makes the runtime external (compat.md)"
    );
    assert_eq!(ws.url, "https://remote.example/a2a");
}

#[tokio::test]
async fn create_validation() {
    let t = start().await;
    let cases = [
        (json!({"name": ""}), "name is required"),
        (
            json!({"name": "x", "template": "../../etc"}),
            "invalid template",
        ),
        (
            json!({"name": "x", "tier": 9}),
            "tier must be between 1 and 4",
        ),
        (
            json!({"name": "x", "workspace_dir": "relative"}),
            "absolute",
        ),
        (
            json!({"name": "x", "workspace_dir": "/etc/secrets"}),
            "must be inside /home",
        ),
        (
            json!({"name": "x", "workspace_access": "read_only"}),
            "requires workspace_dir",
        ),
        (
            json!({"name": "x", "workspace_access": "everything", "workspace_dir": "/home/x"}),
            "workspace_access",
        ),
        (
            json!({"name": "x", "parent_id": Uuid::new_v4()}),
            "parent workspace not found",
        ),
    ];
    for (body, want) in cases {
        let r = t
            .client
            .request(molecule_client::Method::POST, "/workspaces", Some(&body))
            .await
            .unwrap();
        assert_eq!(r.status, 400, "{body}");
        let msg = r.json().unwrap()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(msg.contains(want), "{body}: {msg}");
    }
    assert!(
        t.client.list_workspaces().await.unwrap().is_empty(),
        "failed creates wrote nothing"
    );
}

#[tokio::test]
async fn patch_updates_fields_atomically() {
    let t = start().await;
    let a = t.create("A", None).await;
    let b = t.create("B", None).await;
    let out = t.client.patch_workspace(a, json!({"name": "Alpha", "role": "lead", "tier": 2, "x": 10.5, "y": -3.0, "parent_id": b})).await.unwrap();
    assert_eq!(out, json!({"status": "updated"}));
    let ws = t.client.get_workspace(a).await.unwrap();
    assert_eq!(
        (
            ws.name.as_str(),
            ws.role.as_deref(),
            ws.tier,
            ws.x,
            ws.y,
            ws.parent_id
        ),
        ("Alpha", Some("lead"), 2, 10.5, -3.0, Some(b))
    );

    // A bad field anywhere means nothing is written.
    let r = t
        .client
        .request(
            molecule_client::Method::PATCH,
            &format!("/workspaces/{a}"),
            Some(&json!({"name": "Changed", "tier": "high"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(t.client.get_workspace(a).await.unwrap().name, "Alpha");

    // Cycles are refused.
    let r = t
        .client
        .request(
            molecule_client::Method::PATCH,
            &format!("/workspaces/{b}"),
            Some(&json!({"parent_id": a})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());

    let out = t
        .client
        .patch_workspace(a, json!({"workspace_dir": "/home/me/project"}))
        .await
        .unwrap();
    assert_eq!(out["needs_restart"], true);
    let out = t
        .client
        .patch_workspace(a, json!({"workspace_dir": null, "parent_id": null}))
        .await
        .unwrap();
    assert_eq!(out["status"], "updated");
    let ws = t.client.get_workspace(a).await.unwrap();
    assert_eq!((ws.workspace_dir, ws.parent_id), (None, None));

    let missing = t
        .client
        .patch_workspace(Uuid::new_v4(), json!({"name": "x"}))
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(404));
}

#[tokio::test]
async fn delete_cascades_with_confirmation() {
    let t = start().await;
    let root = t.create("root", None).await;
    let child = t.create("child", Some(root)).await;
    let grandchild = t.create("grandchild", Some(child)).await;
    let token = t.register(grandchild).await;

    let err = t.client.delete_workspace(root, false).await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    let body = err.body().unwrap();
    assert_eq!(body["status"], "confirmation_required");
    assert_eq!(body["children_count"], 1);
    assert_eq!(body["children"][0]["id"], child.to_string());
    assert_eq!(
        t.client.get_workspace(root).await.unwrap().status,
        WorkspaceStatus::Provisioning,
        "nothing deleted without confirm"
    );

    let removed = t.client.delete_workspace(root, true).await.unwrap();
    assert_eq!(removed.cascade_deleted, 2);
    for id in [root, child, grandchild] {
        assert_eq!(
            t.client.get_workspace(id).await.unwrap().status,
            WorkspaceStatus::Removed
        );
    }
    assert!(t.client.list_workspaces().await.unwrap().is_empty());
    // The grandchild's token was revoked with it.
    let r = t
        .as_workspace(grandchild, &token)
        .workspace_state(grandchild)
        .await
        .unwrap_err();
    assert_eq!(r.status(), Some(401));
    // Deleting again is idempotent; an unknown id is a 404.
    assert_eq!(
        t.client
            .delete_workspace(root, true)
            .await
            .unwrap()
            .cascade_deleted,
        0
    );
    assert_eq!(
        t.client
            .delete_workspace(Uuid::new_v4(), true)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    let events = t.client.events(Some(root)).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "WORKSPACE_REMOVED" && e.payload["cascade_deleted"] == 2)
    );
}

#[tokio::test]
async fn state_needs_the_workspace_token() {
    let t = start().await;
    let id = t.create("s", None).await;
    assert_eq!(
        t.client.workspace_state(id).await.unwrap_err().status(),
        Some(401)
    );
    let token = t.register(id).await;
    let st = t
        .as_workspace(id, &token)
        .workspace_state(id)
        .await
        .unwrap();
    assert_eq!(
        (st.status, st.paused, st.deleted),
        (Some(WorkspaceStatus::Online), Some(false), false)
    );
    let other = t.create("other", None).await;
    let err = t
        .as_workspace(id, &token)
        .workspace_state(other)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "a token is bound to its workspace");
}
