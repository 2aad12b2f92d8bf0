//! Secrets (api-contract §5.10): encrypted round trip, the stored version
//! matching the bytes, a wrong key and tampered ciphertext failing loudly,
//! plaintext development mode, global overrides, bad input.

use crate::{TestServer, call, start_on, start_with};
use molecule_client::{Client, Method};
use molecule_server::app::resources::secret_box::SecretsKey;
use serde_json::json;
use uuid::Uuid;

async fn workspace(t: &TestServer, name: &str) -> (Uuid, String, Client) {
    let id = t.create(name, None).await;
    let token = t.register(id).await;
    let c = t.as_workspace(id, &token);
    (id, token, c)
}

fn key(b: u8) -> Option<SecretsKey> {
    Some(SecretsKey::from_bytes([b; 32]))
}

#[tokio::test]
async fn secrets_round_trip_encrypted_at_rest_with_global_overrides() {
    let t = start_with(|c| c.secrets_key = key(1)).await;
    let (ws, _, c) = workspace(&t, "ws").await;
    let base = format!("/workspaces/{ws}/secrets");
    let (s, body) = call(
        &c,
        Method::POST,
        &base,
        Some(json!({"key": "API_KEY", "value": "sk-live-123"})),
    )
    .await;
    assert_eq!(
        (s, body),
        (200, json!({"status": "saved", "key": "API_KEY"}))
    );
    let (s, _) = call(
        &c,
        Method::PUT,
        &base,
        Some(json!({"key": "MODEL_PROVIDER", "value": "anthropic:claude"})),
    )
    .await;
    assert_eq!(s, 200);
    for (k, v) in [("API_KEY", "global-value"), ("SHARED", "from-global")] {
        let (s, body) = call(
            &t.client,
            Method::PUT,
            "/settings/secrets",
            Some(json!({"key": k, "value": v})),
        )
        .await;
        assert_eq!((s, body["scope"].as_str()), (200, Some("global")));
    }

    // At rest: version 1 and no plaintext in the bytes.
    let rows = t.store().await.secret_list_workspace(ws).await.unwrap();
    let api = rows.iter().find(|r| r.key == "API_KEY").unwrap();
    assert_eq!(api.encryption_version, 1);
    assert!(!api.value.windows(11).any(|w| w == b"sk-live-123"));
    assert_eq!(api.value.len(), 12 + 11 + 16);

    let (s, list) = call(&c, Method::GET, &base, None).await;
    assert_eq!(s, 200);
    let list = list.as_array().unwrap();
    let keys: Vec<(&str, &str)> = list
        .iter()
        .map(|e| (e["key"].as_str().unwrap(), e["scope"].as_str().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [
            ("API_KEY", "workspace"),
            ("MODEL_PROVIDER", "workspace"),
            ("SHARED", "global")
        ]
    );
    assert!(
        list.iter()
            .all(|e| e["has_value"] == true && e.get("value").is_none())
    );

    let (s, values) = call(&c, Method::GET, &format!("{base}/values"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        values,
        json!({"API_KEY": "sk-live-123", "MODEL_PROVIDER": "anthropic:claude", "SHARED": "from-global"})
    );
    let (s, model) = call(&c, Method::GET, &format!("/workspaces/{ws}/model"), None).await;
    assert_eq!(
        (s, model),
        (
            200,
            json!({"model": "anthropic:claude", "source": "workspace_secrets"})
        )
    );

    let (s, body) = call(&c, Method::DELETE, &format!("{base}/API_KEY"), None).await;
    assert_eq!(
        (s, body),
        (200, json!({"status": "deleted", "key": "API_KEY"}))
    );
    let (s, body) = call(&c, Method::DELETE, &format!("{base}/API_KEY"), None).await;
    assert_eq!((s, body["error"].as_str()), (404, Some("secret not found")));
    let (_, values) = call(&c, Method::GET, &format!("{base}/values"), None).await;
    assert_eq!(
        values["API_KEY"], "global-value",
        "the global shows through again"
    );
    let (s, globals) = call(&t.client, Method::GET, "/admin/secrets", None).await;
    assert_eq!((s, globals.as_array().unwrap().len()), (200, 2));
    let (s, _) = call(&t.client, Method::DELETE, "/settings/secrets/SHARED", None).await;
    assert_eq!(s, 200);
    let (s, _) = call(&t.client, Method::DELETE, "/admin/secrets/SHARED", None).await;
    assert_eq!(s, 404);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn secrets_wrong_key_and_tampering_fail_loudly() {
    let t = start_with(|c| c.secrets_key = key(1)).await;
    let (ws, token, c) = workspace(&t, "ws").await;
    let base = format!("/workspaces/{ws}/secrets");
    call(
        &c,
        Method::POST,
        &base,
        Some(json!({"key": "API_KEY", "value": "sk-1"})),
    )
    .await;
    call(
        &c,
        Method::POST,
        &base,
        Some(json!({"key": "MODEL_PROVIDER", "value": "m"})),
    )
    .await;
    call(
        &t.client,
        Method::POST,
        "/admin/secrets",
        Some(json!({"key": "G", "value": "g"})),
    )
    .await;

    // Tampered ciphertext: one flipped byte is rejected, not served.
    let store = t.store().await;
    let row = store
        .secret_list_workspace(ws)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key == "API_KEY")
        .unwrap();
    let mut bytes = row.value.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    store
        .secret_set_workspace(ws, "API_KEY", &bytes, 1, chrono::Utc::now())
        .await
        .unwrap();
    let (s, body) = call(&c, Method::GET, &format!("{base}/values"), None).await;
    assert_eq!(s, 500, "{body}");
    assert_eq!(body["failed_keys"], json!(["workspace:API_KEY"]));
    assert!(!body.to_string().contains("sk-1"));

    // Restart with another key: every encrypted value fails, and says so.
    let database = t.server.app.config().database.clone();
    let TestServer { server, _dir, .. } = t;
    server.shutdown().await.unwrap();
    let other = start_on(database.clone(), |c| c.secrets_key = key(2)).await;
    let c2 = Client::new(other.url()).with_token(Some(token.clone()));
    let (s, body) = call(&c2, Method::GET, &format!("{base}/values"), None).await;
    assert_eq!(s, 500);
    let mut failed: Vec<String> = serde_json::from_value(body["failed_keys"].clone()).unwrap();
    failed.sort();
    assert_eq!(
        failed,
        ["global:G", "workspace:API_KEY", "workspace:MODEL_PROVIDER"]
    );
    let (s, _) = call(&c2, Method::GET, &format!("/workspaces/{ws}/model"), None).await;
    assert_eq!(s, 500);
    other.shutdown().await.unwrap();

    // Without any key: encrypted rows cannot be opened either.
    let none = start_on(database, |c| c.secrets_key = None).await;
    let c3 = Client::new(none.url()).with_token(Some(token));
    let (s, _) = call(&c3, Method::GET, &format!("{base}/values"), None).await;
    assert_eq!(s, 500);
    none.shutdown().await.unwrap();
    drop(_dir);
}

#[tokio::test]
async fn development_without_a_key_encrypts_with_a_generated_key_file() {
    let t = start_with(|c| c.secrets_key = None).await;
    let key_file = t
        .server
        .app
        .config()
        .data_dir
        .join(molecule_server::server::SECRETS_KEY_FILE);
    let mode = std::fs::metadata(&key_file)
        .expect("the key file is created at start")
        .permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.mode() & 0o777, 0o600, "only the owner reads the key");
    let (ws, token, c) = workspace(&t, "ws").await;
    call(
        &c,
        Method::POST,
        &format!("/workspaces/{ws}/secrets"),
        Some(json!({"key": "K", "value": "plain-v"})),
    )
    .await;
    let rows = t.store().await.secret_list_workspace(ws).await.unwrap();
    assert_eq!(rows[0].encryption_version, 1, "encrypted, not plaintext");
    assert!(
        !rows[0].value.windows(7).any(|w| w == b"plain-v"),
        "no plaintext at rest"
    );

    // A restart on the same data directory reads the same key file.
    let database = t.server.app.config().database.clone();
    let data_dir = t.server.app.config().data_dir.clone();
    let TestServer { server, _dir, .. } = t;
    server.shutdown().await.unwrap();
    let again = start_on(database, |c| {
        c.secrets_key = None;
        c.data_dir = data_dir;
    })
    .await;
    let c2 = Client::new(again.url()).with_token(Some(token));
    let (s, values) = call(
        &c2,
        Method::GET,
        &format!("/workspaces/{ws}/secrets/values"),
        None,
    )
    .await;
    assert_eq!((s, values["K"].clone()), (200, json!("plain-v")));
    again.shutdown().await.unwrap();
    drop(_dir);
}

#[tokio::test]
async fn secrets_bad_input_changes_nothing() {
    let t = start_with(|c| c.secrets_key = key(3)).await;
    let (ws, _, c) = workspace(&t, "ws").await;
    let base = format!("/workspaces/{ws}/secrets");
    let (s, body) = call(&c, Method::GET, "/workspaces/not-a-uuid/secrets", None).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid workspace ID"))
    );
    for bad in [
        json!({"key": "K"}),
        json!({"value": "v"}),
        json!({"key": "", "value": "v"}),
        json!({"key": "K", "value": "x".repeat(70_000)}),
        json!({"key": 1, "value": "v"}),
    ] {
        let (s, body) = call(&c, Method::POST, &base, Some(bad)).await;
        assert_eq!(s, 400, "{body}");
    }
    let (s, _) = call(
        &t.client,
        Method::POST,
        &base,
        Some(json!({"key": "K", "value": "v"})),
    )
    .await;
    assert_eq!(s, 401, "no token");
    let (s, list) = call(&c, Method::GET, &base, None).await;
    assert_eq!((s, list), (200, json!([])));
    t.server.shutdown().await.unwrap();
}

/// The environment of the local child process running `id`.
fn runtime_env(id: Uuid) -> Option<Vec<String>> {
    let needle = format!("WORKSPACE_ID={id}");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<String> = env
            .split(|b| *b == 0)
            .map(|kv| String::from_utf8_lossy(kv).into_owned())
            .collect();
        if vars.contains(&needle) {
            return Some(vars);
        }
    }
    None
}

#[tokio::test]
async fn secrets_reach_the_runtime_env_and_a_change_restarts_it() {
    use crate::lifecycle::{Backend, start_backend, wait_status};
    use molecule_types::WorkspaceStatus;
    use std::time::Duration;
    let t = start_backend(Backend::Local, |c| c.secrets_key = key(4))
        .await
        .expect("local backend");
    call(
        &t.client,
        Method::PUT,
        "/settings/secrets",
        Some(json!({"key": "SHARED", "value": "global"})),
    )
    .await;
    call(
        &t.client,
        Method::PUT,
        "/settings/secrets",
        Some(json!({"key": "WORKSPACE_ID", "value": "spoof"})),
    )
    .await;
    let id = t.create("env", None).await;
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    let env = runtime_env(id).expect("runtime process");
    assert!(env.contains(&"SHARED=global".to_string()), "{env:?}");
    assert!(
        !env.contains(&"WORKSPACE_ID=spoof".to_string()),
        "platform variables win"
    );
    // A workspace secret overrides the global and restarts the runtime.
    let token = t.server.app.issue_token(id).await.unwrap();
    let c = t.as_workspace(id, &token);
    let (s, _) = call(
        &c,
        Method::POST,
        &format!("/workspaces/{id}/secrets"),
        Some(json!({"key": "SHARED", "value": "mine"})),
    )
    .await;
    assert_eq!(s, 200);
    let env = crate::eventually(Duration::from_secs(60), || async {
        runtime_env(id).filter(|e| e.contains(&"SHARED=mine".to_string()))
    })
    .await
    .expect("restarted with the new value");
    assert!(!env.contains(&"SHARED=global".to_string()));
    let events = t.client.events(Some(id)).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "WORKSPACE_RESTART_DECISION"
                && e.payload["reason"] == "secret SHARED changed"),
        "{events:?}"
    );
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    t.client.delete_workspace(id, true).await.unwrap();
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn secrets_that_cannot_be_decrypted_fail_provisioning_with_a_reason() {
    use crate::lifecycle::{Backend, start_backend, wait_event, wait_status};
    use molecule_types::WorkspaceStatus;
    use std::time::Duration;
    let t = start_backend(Backend::Local, |c| c.secrets_key = key(5))
        .await
        .expect("local backend");
    // Ciphertext from another key, as after a key mix-up.
    let foreign =
        molecule_server::app::resources::secret_box::SecretBox::new(key(6)).seal("top-secret");
    t.store()
        .await
        .secret_set_global(
            "BROKEN",
            foreign.bytes(),
            foreign.version(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let id = t.create("doomed", None).await;
    let ws = wait_status(
        &t.client,
        id,
        WorkspaceStatus::Failed,
        Duration::from_secs(30),
    )
    .await;
    let reason = ws.status_reason.unwrap_or_default();
    assert!(reason.contains("global:BROKEN"), "{reason}");
    assert!(!reason.contains("top-secret"));
    wait_event(&t.client, id, "WORKSPACE_PROVISION_FAILED").await;
    t.server.shutdown().await.unwrap();
}

/// `WORKSPACE_RESTART_DECISION` events of `id` caused by the REGION secret.
async fn restart_decisions(c: &Client, id: Uuid) -> usize {
    c.events(Some(id))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.event_type == "WORKSPACE_RESTART_DECISION"
                && e.payload["reason"] == "secret REGION changed"
        })
        .count()
}

#[tokio::test]
async fn secrets_global_change_restarts_only_workspaces_that_see_it() {
    use crate::lifecycle::{Backend, start_backend, wait_status};
    use molecule_types::WorkspaceStatus;
    use molecule_types::dto::CreateWorkspace;
    use std::time::Duration;
    let t = start_backend(Backend::Local, |c| c.secrets_key = key(8))
        .await
        .expect("local backend");
    let plain = t.create("plain", None).await;
    let overriding = t.create("overriding", None).await;
    let external = t
        .client
        .create_workspace(&CreateWorkspace {
            name: "remote".into(),
            external: true,
            url: Some("http://remote.test:8000".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    for id in [plain, overriding] {
        wait_status(
            &t.client,
            id,
            WorkspaceStatus::Online,
            Duration::from_secs(60),
        )
        .await;
    }
    let token = t.server.app.issue_token(overriding).await.unwrap();
    let oc = t.as_workspace(overriding, &token);
    oc.set_secret(overriding, "REGION", "eu").await.unwrap();
    // Let the override's own restart finish before the global change.
    crate::eventually(Duration::from_secs(60), || async {
        runtime_env(overriding).filter(|e| e.contains(&"REGION=eu".to_string()))
    })
    .await
    .expect("override applied");
    assert_eq!(restart_decisions(&t.client, overriding).await, 1);

    t.client.set_global_secret("REGION", "us").await.unwrap();
    let env = crate::eventually(Duration::from_secs(60), || async {
        runtime_env(plain).filter(|e| e.contains(&"REGION=us".to_string()))
    })
    .await
    .expect("the workspace without an override restarts with the global");
    assert!(!env.is_empty());
    assert_eq!(restart_decisions(&t.client, plain).await, 1);
    assert_eq!(
        restart_decisions(&t.client, overriding).await,
        1,
        "an overriding workspace is not restarted"
    );
    assert_eq!(
        restart_decisions(&t.client, external).await,
        0,
        "an external workspace has no runtime to restart"
    );
    assert!(
        runtime_env(overriding)
            .unwrap()
            .contains(&"REGION=eu".to_string())
    );
    for id in [plain, overriding, external] {
        t.client.delete_workspace(id, true).await.unwrap();
    }
    t.server.shutdown().await.unwrap();
}
