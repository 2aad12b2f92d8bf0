//! Adversarial tests: credentials (issue 12 §1, §9, §12). A workspace's
//! credential is born with it in production, so no route trusts a bare id;
//! development mode's open doors open to loopback peers only; a workspace's
//! event stream carries its relations' state, never their exchanges.

use molecule_client::{Client, Method};
use molecule_server::app::auth::{Credentials, Network};
use molecule_types::dto::{CreateWorkspace, Heartbeat, RegisterRequest};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

use crate::{TestServer, call, start, start_with};

async fn production() -> TestServer {
    start_with(crate::production).await
}

/// An external workspace created by the operator, and its token.
async fn external(t: &TestServer) -> (Uuid, String) {
    let created = t
        .admin()
        .create_workspace(&CreateWorkspace {
            name: "ext".into(),
            external: true,
            url: Some("http://ext.test:8000".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let token = created
        .auth_token
        .expect("an external workspace's token is in the create response");
    (created.id, token)
}

fn register_body(id: Uuid, card: serde_json::Value) -> serde_json::Value {
    json!({"id": id, "url": format!("http://agent-{}.test:8000", &id.to_string()[..8]), "agent_card": card})
}

/// Every route that names a workspace, tried with nothing but its id.
async fn bare_id_is_refused_everywhere(t: &TestServer, id: Uuid) {
    let anon = t.client.clone();
    let as_id = t.client.clone().with_workspace_id(Some(id));
    let hb = json!({"workspace_id": id, "error_rate": 0.0});
    let cases: Vec<(&Client, Method, String, Option<serde_json::Value>)> = vec![
        (
            &anon,
            Method::POST,
            "/registry/register".into(),
            Some(register_body(id, json!({"name": "thief"}))),
        ),
        (&anon, Method::POST, "/registry/heartbeat".into(), Some(hb)),
        (
            &anon,
            Method::POST,
            "/registry/update-card".into(),
            Some(json!({"workspace_id": id, "agent_card": {"name": "thief"}})),
        ),
        (&anon, Method::GET, format!("/registry/{id}/peers"), None),
        (
            &as_id,
            Method::GET,
            format!("/registry/discover/{id}"),
            None,
        ),
        (
            &as_id,
            Method::GET,
            format!("/workspaces/{id}/schedules/health"),
            None,
        ),
        (&anon, Method::GET, format!("/workspaces/{id}"), None),
        (
            &anon,
            Method::POST,
            "/registry/check-access".into(),
            Some(json!({"caller_id": id, "target_id": id})),
        ),
        (
            &as_id,
            Method::POST,
            format!("/workspaces/{id}/a2a"),
            Some(json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {}})),
        ),
    ];
    for (client, method, path, body) in cases {
        let (status, reply) = call(client, method.clone(), &path, body).await;
        assert_eq!(status, 401, "{method} {path} with a bare id: {reply}");
    }
    assert!(
        as_id.subscribe().await.is_err(),
        "/ws with a bare X-Workspace-ID"
    );
}

#[tokio::test]
async fn production_credentials_are_born_with_the_workspace() {
    let t = production().await;
    // External agent: its token comes back once, in the create response.
    let (id, token) = external(&t).await;
    // No runtime backend: nobody else will hand the token over either.
    let waiting = t
        .admin()
        .create_workspace(&CreateWorkspace {
            name: "waits-for-its-agent".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(waiting.auth_token.is_some());

    // Before its agent ever registered, the id alone opens nothing.
    bare_id_is_refused_everywhere(&t, id).await;
    bare_id_is_refused_everywhere(&t, waiting.id).await;
    // Another workspace's token is not this one's.
    let wrong = t
        .client
        .clone()
        .with_token(waiting.auth_token.clone())
        .register(&serde_json::from_value::<RegisterRequest>(register_body(id, json!({}))).unwrap())
        .await
        .unwrap_err();
    assert_eq!(wrong.status(), Some(401));

    let me = t.as_workspace(id, &token);
    let reply = me
        .register(&serde_json::from_value(register_body(id, json!({"name": "ext"}))).unwrap())
        .await
        .unwrap();
    assert_eq!(
        reply.auth_token, None,
        "registration never mints a second credential in production"
    );
    t.heartbeat(id, &token, Heartbeat::default()).await;
    assert_eq!(me.get_workspace(id).await.unwrap().id, id);
    assert!(me.peers(id).await.is_ok());
    assert!(me.subscribe().await.is_ok());
    // A token never opens another workspace's record.
    let (s, _) = call(
        &me,
        Method::GET,
        &format!("/workspaces/{}", waiting.id),
        None,
    )
    .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn rotation_revokes_the_old_credential_at_once() {
    let t = production().await;
    let (id, old) = external(&t).await;
    t.heartbeat(id, &old, Heartbeat::default()).await;

    let as_ws = t.as_workspace(id, &old);
    assert_eq!(
        as_ws.rotate_token(id).await.unwrap_err().status(),
        Some(401),
        "a workspace cannot rotate (it is an admin route)"
    );
    let rotated = t.admin().rotate_token(id).await.unwrap();
    assert_eq!(rotated.workspace_id, id);
    assert_ne!(rotated.auth_token, old);
    let hb = Heartbeat {
        workspace_id: id.to_string(),
        ..Default::default()
    };
    assert_eq!(
        as_ws.heartbeat(&hb).await.unwrap_err().status(),
        Some(401),
        "the old token is dead, cache included"
    );
    t.heartbeat(id, &rotated.auth_token, Heartbeat::default())
        .await;
    assert_eq!(
        t.admin()
            .rotate_token(Uuid::new_v4())
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
}

#[tokio::test]
async fn development_opens_its_doors_to_loopback_peers_only() {
    let t = start().await;
    let id = t.create("w", None).await;
    let app = &t.server.app;
    let remote = Credentials::remote(None);
    assert_eq!(Network::of("172.17.0.5".parse().unwrap()), Network::Remote);
    assert_eq!(Network::of("127.0.0.2".parse().unwrap()), Network::Loopback);
    assert_eq!(
        Network::of("::ffff:127.0.0.1".parse().unwrap()),
        Network::Loopback
    );
    // A container on the gateway listener: no admin door, no first-register
    // token, no trusted canvas identity.
    assert!(app.auth_admin(remote).is_err());
    let req: RegisterRequest = serde_json::from_value(register_body(id, json!({}))).unwrap();
    assert_eq!(app.check_registration(&req).unwrap(), id);
    let err = app.auth_agent(id, remote, "workspace").await.unwrap_err();
    assert!(err.to_string().contains("auth token"), "{err}");
    assert!(app.auth_dev(remote).is_err());
    // The same from loopback keeps the reference's behaviour.
    let loopback = Credentials {
        bearer: None,
        network: Network::Loopback,
    };
    assert!(app.auth_admin(loopback).is_ok());
    assert!(app.auth_dev(loopback).is_ok());
    let agent = app.auth_agent(id, loopback, "workspace").await.unwrap();
    let token = app
        .register(agent, req)
        .await
        .unwrap()
        .auth_token
        .expect("first registration from loopback mints a token");
    // Once it has one, remote callers present it like anyone else.
    let with = Credentials::remote(Some(&token));
    assert!(app.auth_agent(id, with, "workspace").await.is_ok());
    assert!(app.auth_agent(id, remote, "workspace").await.is_err());
}

#[tokio::test]
async fn every_registration_announces_the_url_and_card() {
    let t = start().await;
    let id = t.create("w", None).await;
    let mut watcher = t.client.subscribe().await.unwrap();
    let token = t.register(id).await;
    let again = RegisterRequest {
        id: id.to_string(),
        url: "http://moved.test:9000".into(),
        agent_card: json!({"name": "v2"}),
    };
    t.as_workspace(id, &token).register(&again).await.unwrap();
    for want in ["agent ", "v2"] {
        let e = watcher
            .next_matching(
                |e| e.event == "WORKSPACE_ONLINE" && e.workspace_id == id.to_string(),
                Duration::from_secs(10),
            )
            .await
            .unwrap()
            .expect("a WORKSPACE_ONLINE per registration");
        assert!(
            e.payload["agent_card"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(want)),
            "{e:?}"
        );
        assert!(e.payload["url"].as_str().is_some_and(|u| !u.is_empty()));
    }
}

#[tokio::test]
async fn a_workspace_stream_shows_its_relations_state_not_their_exchanges() {
    let t = start().await;
    let root = t.create("root", None).await;
    let a = t.create("a", Some(root)).await;
    let a1 = t.create("a1", Some(a)).await;
    let a2 = t.create("a2", Some(a)).await;
    let token_a1 = t.register(a1).await;
    let mut watcher = t.as_workspace(a1, &token_a1).subscribe().await.unwrap();
    let token_root = t.register(root).await; // grandparent: not a direct relation
    let token_a = t.register(a).await; // parent: visible
    let token_a2 = t.register(a2).await; // sibling: visible
    // Exchanges of others: never shown to a1.
    t.as_workspace(a, &token_a)
        .notify(a, "the parent's private note")
        .await
        .unwrap();
    t.as_workspace(a2, &token_a2)
        .notify(a2, "the sibling's private note")
        .await
        .unwrap();
    let _ = token_root;
    t.as_workspace(a1, &token_a1)
        .notify(a1, "mine")
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let e = watcher
            .next_matching(|_| true, Duration::from_secs(10))
            .await
            .unwrap()
            .expect("events until a1's own message");
        let done = e.event == "AGENT_MESSAGE" && e.workspace_id == a1.to_string();
        seen.push((e.event.clone(), e.workspace_id.clone()));
        if done {
            break;
        }
    }
    let name = |id: &str| {
        [(root, "root"), (a, "a"), (a1, "a1"), (a2, "a2")]
            .iter()
            .find(|(u, _)| u.to_string() == id)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    };
    let seen: Vec<(String, &str)> = seen.iter().map(|(e, w)| (e.clone(), name(w))).collect();
    assert_eq!(
        seen,
        vec![
            ("WORKSPACE_ONLINE".to_string(), "a"),
            ("WORKSPACE_ONLINE".to_string(), "a2"),
            ("AGENT_MESSAGE".to_string(), "a1"),
        ],
        "parent and sibling state, own messages; no grandparent, no one else's messages"
    );
}

#[tokio::test]
async fn keys_and_fields_have_a_grammar_and_a_size() {
    let t = start().await;
    let id = t.create("w", None).await;
    let token = t.register(id).await;
    let c = t.as_workspace(id, &token);
    for key in ["A\u{0}B", "A\r\nB", "../etc/passwd", "has space", ""] {
        let (s, body) = call(
            &c,
            Method::POST,
            &format!("/workspaces/{id}/secrets"),
            Some(json!({"key": key, "value": "v"})),
        )
        .await;
        assert_eq!(s, 400, "secret key {key:?}: {body}");
    }
    for key in ["a\u{0}b", "a\r\nb", "../../x", "a/../b"] {
        let (s, body) = call(
            &c,
            Method::POST,
            &format!("/workspaces/{id}/memory"),
            Some(json!({"key": key, "value": 1})),
        )
        .await;
        assert_eq!(s, 400, "memory key {key:?}: {body}");
    }
    let big = "x".repeat(300 * 1024);
    let (s, body) = call(
        &t.client,
        Method::POST,
        "/workspaces",
        Some(json!({"name": big})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("name must be at most")
    );
    let (s, _) = call(
        &c,
        Method::PATCH,
        &format!("/workspaces/{id}"),
        Some(json!({"role": big})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &c,
        Method::POST,
        &format!("/workspaces/{id}/schedules"),
        Some(json!({"cron_expr": "* * * * *", "prompt": "p".repeat(70 * 1024)})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &c,
        Method::POST,
        &format!("/workspaces/{id}/approvals"),
        Some(json!({"action": big})),
    )
    .await;
    assert_eq!(s, 400);
    // A heartbeat is never refused for a long text: it is cut and marked.
    t.heartbeat(
        id,
        &token,
        Heartbeat {
            current_task: big.clone(),
            ..Default::default()
        },
    )
    .await;
    let task = crate::eventually(Duration::from_secs(10), || async {
        let w = t.client.get_workspace(id).await.ok()?;
        (!w.current_task.is_empty()).then_some(w.current_task)
    })
    .await
    .unwrap();
    assert!(
        task.len() <= 4096 && task.ends_with("[truncated]"),
        "{}",
        task.len()
    );
    // Nothing was stored by the refused writes.
    let (_, secrets) = call(&c, Method::GET, &format!("/workspaces/{id}/secrets"), None).await;
    assert_eq!(secrets, json!([]));
}

#[tokio::test]
async fn workspace_dir_must_lie_inside_a_configured_root() {
    let t = start().await;
    for dir in [
        "/run/docker.sock",
        "/root/.ssh",
        "/home/me/.ssh",
        "/etc",
        "/home/me\u{0}x",
    ] {
        let (s, body) = call(
            &t.client,
            Method::POST,
            "/workspaces",
            Some(json!({"name": "w", "workspace_dir": dir})),
        )
        .await;
        assert_eq!(s, 400, "{dir:?}: {body}");
    }
    let (s, body) = call(
        &t.client,
        Method::POST,
        "/workspaces",
        Some(json!({"name": "w", "workspace_dir": "/home/me/project"})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
}
