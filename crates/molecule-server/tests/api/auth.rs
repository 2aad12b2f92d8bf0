//! Production mode: closed by default.

use molecule_client::Method;
use molecule_types::dto::{CreateWorkspace, RegisterRequest};
use serde_json::json;
use uuid::Uuid;

use crate::{TestServer, start_with};

async fn production() -> TestServer {
    start_with(crate::production).await
}

#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    let t = production().await;
    let err = t.client.list_workspaces().await.unwrap_err();
    assert_eq!(
        (
            err.status(),
            err.to_string().contains("admin auth required")
        ),
        (Some(401), true)
    );
    let err = t
        .client
        .clone()
        .with_token(Some("nope".into()))
        .list_workspaces()
        .await
        .unwrap_err();
    assert_eq!(
        (
            err.status(),
            err.to_string().contains("invalid admin auth token")
        ),
        (Some(401), true)
    );
    assert!(t.admin().list_workspaces().await.unwrap().is_empty());
    assert_eq!(t.client.events(None).await.unwrap_err().status(), Some(401));
    assert_eq!(t.client.liveness().await.unwrap_err().status(), Some(401));
    let r = t
        .client
        .request(Method::POST, "/workspaces", Some(&json!({"name": "x"})))
        .await
        .unwrap();
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_workspace_token_is_never_an_admin_token() {
    let t = production().await;
    let created = t
        .admin()
        .create_workspace(&CreateWorkspace {
            name: "w".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = created.id;
    let token = created.auth_token.unwrap();
    let as_ws = t.client.clone().with_token(Some(token.clone()));
    assert_eq!(
        as_ws.list_workspaces().await.unwrap_err().status(),
        Some(401)
    );
    assert_eq!(
        as_ws.delete_workspace(id, true).await.unwrap_err().status(),
        Some(401)
    );
    let err = as_ws
        .patch_workspace(id, json!({"tier": 4}))
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(401),
        "sensitive PATCH fields need the admin token"
    );
    assert_eq!(
        as_ws
            .patch_workspace(id, json!({"name": "renamed"}))
            .await
            .unwrap()["status"],
        "updated",
        "own token may rename"
    );
    let err = t
        .client
        .patch_workspace(id, json!({"name": "anon"}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "anonymous PATCH refused");
    assert_eq!(
        t.admin()
            .patch_workspace(id, json!({"tier": 3}))
            .await
            .unwrap()["status"],
        "updated"
    );
}

#[tokio::test]
async fn production_has_no_test_tokens_and_no_self_registration() {
    let t = production().await;
    let id = t
        .admin()
        .create_workspace(&CreateWorkspace {
            name: "w".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let err = t.client.test_token(id).await.unwrap_err();
    assert_eq!(
        (err.status(), err.to_string().contains("not found")),
        (Some(404), true)
    );
    let stranger = Uuid::new_v4();
    let reg = RegisterRequest {
        id: stranger.to_string(),
        url: "http://x.test".into(),
        agent_card: json!({}),
    };
    assert_eq!(
        t.client.register(&reg).await.unwrap_err().status(),
        Some(401),
        "no credential, no registration"
    );
    assert_eq!(
        t.admin().register(&reg).await.unwrap_err().status(),
        Some(404),
        "no rows minted by registration, not even by an operator"
    );
    assert_eq!(
        t.admin()
            .get_workspace(stranger)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
}

#[tokio::test]
async fn production_websocket_needs_a_credential() {
    let t = production().await;
    assert!(t.client.subscribe().await.is_err());
    assert!(t.admin().subscribe().await.is_ok());
}

#[tokio::test]
async fn development_test_token_works_and_admin_routes_are_open() {
    let t = start_with(|_| {}).await;
    let id = t.create("w", None).await;
    let tt = t.client.test_token(id).await.unwrap();
    assert_eq!(tt.workspace_id, id);
    let st = t
        .as_workspace(id, &tt.auth_token)
        .workspace_state(id)
        .await
        .unwrap();
    assert!(!st.deleted);
    assert_eq!(
        t.client
            .test_token(Uuid::new_v4())
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
}
