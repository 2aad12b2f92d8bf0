//! Schedules (api-contract §5.8): CRUD and validation, health, workspace
//! config, and the operator flow through the typed client. The scheduler's
//! run policies are in `scheduler.rs`.

use crate::{TestServer, call, eventually, start};
use chrono::{DateTime, Duration as Chrono, Utc};
use molecule_client::{Client, Method};
use molecule_store::{SchedulePatch, Store};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// A workspace with its token, as an agent would hold it.
pub async fn workspace(t: &TestServer, name: &str, parent: Option<Uuid>) -> (Uuid, Client) {
    let id = t.create(name, parent).await;
    let token = t.register(id).await;
    (id, t.as_workspace(id, &token))
}

/// A schedule that never comes due by itself (once a year).
pub async fn yearly(c: &Client, ws: Uuid, name: &str) -> Uuid {
    let (s, body) = call(
        c,
        Method::POST,
        &format!("/workspaces/{ws}/schedules"),
        Some(json!({"name": name, "cron_expr": "0 0 1 1 *", "prompt": "yearly report"})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    body["id"].as_str().unwrap().parse().unwrap()
}

/// Make a schedule due `ago` in the past, directly in the store.
pub async fn make_due(store: &dyn Store, ws: Uuid, id: Uuid, ago: Chrono) {
    let p = SchedulePatch {
        next_run_at: Some(Some(Utc::now() - ago)),
        ..Default::default()
    };
    assert!(store.schedule_patch(ws, id, &p, Utc::now()).await.unwrap());
}

pub async fn get(c: &Client, ws: Uuid, id: Uuid) -> Value {
    let (s, list) = call(c, Method::GET, &format!("/workspaces/{ws}/schedules"), None).await;
    assert_eq!(s, 200);
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(id))
        .cloned()
        .expect("schedule listed")
}

pub async fn history(c: &Client, ws: Uuid, id: Uuid) -> Vec<Value> {
    let (s, h) = call(
        c,
        Method::GET,
        &format!("/workspaces/{ws}/schedules/{id}/history"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{h}");
    h.as_array().unwrap().clone()
}

pub fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn schedules_crud_and_validation() {
    let t = start().await;
    let (ws, c) = workspace(&t, "ws", None).await;
    let (other, oc) = workspace(&t, "other", None).await;
    let base = format!("/workspaces/{ws}/schedules");

    let (s, body) = call(&c, Method::POST, &base, Some(json!({"cron_expr": "30 9 * * MON-FRI", "timezone": "Europe/Paris", "prompt": "standup"}))).await;
    assert_eq!(
        (s, body["status"].as_str()),
        (201, Some("created")),
        "{body}"
    );
    assert!(ts(&body["next_run_at"]) > Utc::now());
    // A second unnamed schedule is fine; a duplicate name is a 409.
    let (s, _) = call(
        &c,
        Method::POST,
        &base,
        Some(json!({"cron_expr": "0 * * * *", "prompt": "hourly"})),
    )
    .await;
    assert_eq!(s, 201);
    let daily = yearly(&c, ws, "daily").await;
    let (s, body) = call(
        &c,
        Method::POST,
        &base,
        Some(json!({"name": "daily", "cron_expr": "0 0 * * *", "prompt": "x"})),
    )
    .await;
    assert_eq!(s, 409, "{body}");

    for (req, want) in [
        (json!({"prompt": "x"}), "cron_expr and prompt are required"),
        (
            json!({"cron_expr": "* * * * *", "prompt": ""}),
            "cron_expr and prompt are required",
        ),
        (
            json!({"cron_expr": "* * * * *", "prompt": "x", "timezone": "Mars/Olympus"}),
            "invalid timezone: Mars/Olympus",
        ),
        (
            json!({"cron_expr": "@daily", "prompt": "x"}),
            "invalid cron expression",
        ),
        (
            json!({"cron_expr": "61 * * * *", "prompt": "x"}),
            "invalid cron expression",
        ),
        (
            json!({"cron_expr": "* * * *", "prompt": "x"}),
            "invalid cron expression",
        ),
        (
            json!({"cron_expr": 5, "prompt": "x"}),
            "invalid request body",
        ),
    ] {
        let (s, body) = call(&c, Method::POST, &base, Some(req.clone())).await;
        assert_eq!(s, 400, "{req}: {body}");
        assert!(
            body["error"].as_str().unwrap().starts_with(want),
            "{req}: {body}"
        );
    }
    let r = c
        .raw(Method::POST, base.clone())
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 400);

    let (s, list) = call(&c, Method::GET, &base, None).await;
    assert_eq!(s, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3, "failed requests changed nothing");
    assert_eq!(list[0]["prompt"], "standup", "oldest first");
    for field in [
        "id",
        "workspace_id",
        "name",
        "cron_expr",
        "timezone",
        "prompt",
        "enabled",
        "last_run_at",
        "next_run_at",
        "run_count",
        "last_status",
        "last_error",
        "source",
        "created_at",
        "updated_at",
    ] {
        assert!(list[0].get(field).is_some(), "{field}");
    }
    assert_eq!(
        (list[0]["source"].as_str(), list[0]["timezone"].as_str()),
        (Some("runtime"), Some("Europe/Paris"))
    );

    // PATCH: recomputes on cron change, validates, is scoped to the workspace.
    let one = format!("{base}/{daily}");
    let before = get(&c, ws, daily).await["next_run_at"].clone();
    let (s, body) = call(
        &c,
        Method::PATCH,
        &one,
        Some(json!({"cron_expr": "*/5 * * * *"})),
    )
    .await;
    assert_eq!((s, body), (200, json!({"status": "updated"})));
    let after = get(&c, ws, daily).await;
    assert_ne!(after["next_run_at"], before);
    assert!(ts(&after["next_run_at"]) <= Utc::now() + Chrono::minutes(5));
    for bad in [
        json!({"cron_expr": "nope"}),
        json!({"timezone": "X/Y"}),
        json!({"enabled": "yes"}),
        json!({"prompt": ""}),
    ] {
        let (s, body) = call(&c, Method::PATCH, &one, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {body}");
    }
    assert_eq!(get(&c, ws, daily).await["cron_expr"], "*/5 * * * *");
    let (s, _) = call(
        &oc,
        Method::PATCH,
        &format!("/workspaces/{other}/schedules/{daily}"),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(s, 404, "another workspace's schedule is not found");
    let (s, _) = call(&oc, Method::PATCH, &one, Some(json!({"name": "x"}))).await;
    assert_eq!(s, 401, "another workspace's token");
    let (s, body) = call(
        &c,
        Method::PATCH,
        &format!("{base}/not-a-uuid"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (404, Some("schedule not found"))
    );

    let (s, body) = call(&c, Method::DELETE, &one, None).await;
    assert_eq!((s, body), (200, json!({"status": "deleted"})));
    let (s, _) = call(&c, Method::DELETE, &one, None).await;
    assert_eq!(s, 404);
    let (s, _) = call(&t.client, Method::GET, &base, None).await;
    assert_eq!(s, 401, "workspace auth is required");
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn schedules_health_needs_a_caller_allowed_to_talk() {
    let t = start().await;
    let (parent, pc) = workspace(&t, "parent", None).await;
    let (child, cc) = workspace(&t, "child", Some(parent)).await;
    let (grand, gc) = workspace(&t, "grandchild", Some(child)).await;
    let (other_child, _) = workspace(&t, "other-child", Some(parent)).await;
    let (cousin, cousin_c) = workspace(&t, "cousin", Some(other_child)).await;
    let _ = (pc, gc);
    yearly(&cc, child, "health").await;
    let path = format!("/workspaces/{child}/schedules/health");
    let (s, body) = call(&t.client, Method::GET, &path, None).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (401, Some("X-Workspace-ID header required"))
    );
    let (s, body) = call(&cc, Method::GET, &path, None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body[0]["name"], "health");
    assert!(body[0].get("prompt").is_none() && body[0].get("cron_expr").is_none());
    let _ = grand;
    let (s, _) = call(&cousin_c, Method::GET, &path, None).await;
    assert_eq!(s, 403, "cousin {cousin} may not look");
    // A caller claiming another workspace's identity without its token.
    let (s, _) = call(
        &t.client.clone().with_workspace_id(Some(parent)),
        Method::GET,
        &path,
        None,
    )
    .await;
    assert_eq!(s, 401);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn config_get_and_shallow_patch() {
    let t = start().await;
    let (ws, c) = workspace(&t, "ws", None).await;
    let path = format!("/workspaces/{ws}/config");
    assert_eq!(
        call(&c, Method::GET, &path, None).await,
        (200, json!({"data": {}}))
    );
    assert_eq!(
        call(
            &c,
            Method::PATCH,
            &path,
            Some(json!({"a": 1, "n": {"x": 1}}))
        )
        .await,
        (200, json!({"status": "updated"}))
    );
    assert_eq!(
        call(
            &c,
            Method::PATCH,
            &path,
            Some(json!({"b": 2, "n": {"y": 2}}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(&c, Method::GET, &path, None).await,
        (200, json!({"data": {"a": 1, "b": 2, "n": {"y": 2}}}))
    );
    let (s, body) = call(&c, Method::PATCH, &path, Some(json!([1, 2]))).await;
    assert_eq!(s, 400, "{body}");
    let r = c
        .raw(Method::PATCH, path.clone())
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json().unwrap()["error"].as_str()),
        (400, Some("invalid JSON"))
    );
    assert_eq!(
        call(&c, Method::GET, &path, None).await.1["data"]["a"],
        1,
        "nothing changed"
    );
    assert_eq!(call(&t.client, Method::GET, &path, None).await.0, 401);
    t.server.shutdown().await.unwrap();
}

/// The "done when": an operator gives a workspace secrets, a daily
/// schedule and an approval flow through the API, using the typed client
/// (which also proves the responses decode into the wire DTOs).
#[tokio::test]
async fn schedules_secrets_approvals_operator_flow_through_the_typed_client() {
    use molecule_types::workspace_data::{
        CommitMemory, CreateApproval, CreateSchedule, DecideApproval, MemorySearch, SetMemoryEntry,
    };
    let t = crate::start_with(|c| {
        c.secrets_key =
            Some(molecule_server::app::resources::secret_box::SecretsKey::from_bytes([7; 32]))
    })
    .await;
    let lead = t.create("lead", None).await;
    let dev = t.create("dev", Some(lead)).await;
    let token = t.register(dev).await;
    let c = t.as_workspace(dev, &token);

    t.client
        .set_global_secret("ORG_TOKEN", "org")
        .await
        .unwrap();
    c.set_secret(dev, "OPENAI_API_KEY", "sk-dev").await.unwrap();
    let secrets = c.list_secrets(dev).await.unwrap();
    assert_eq!(
        secrets
            .iter()
            .map(|s| (s.key.as_str(), s.scope.as_str()))
            .collect::<Vec<_>>(),
        [("OPENAI_API_KEY", "workspace"), ("ORG_TOKEN", "global")]
    );
    let values = c.secret_values(dev).await.unwrap();
    assert_eq!(
        values.get("OPENAI_API_KEY").map(String::as_str),
        Some("sk-dev")
    );
    assert_eq!(t.client.list_global_secrets().await.unwrap().len(), 1);

    let daily = CreateSchedule {
        name: "standup".into(),
        cron_expr: "0 9 * * *".into(),
        timezone: Some("Europe/Paris".into()),
        prompt: "Post the daily standup".into(),
        enabled: None,
    };
    let created = c.create_schedule(dev, &daily).await.unwrap();
    let next = created.next_run_at.expect("a next run");
    assert!(next > Utc::now() && next <= Utc::now() + Chrono::days(1));
    let list = c.list_schedules(dev).await.unwrap();
    assert_eq!(
        (
            list[0].name.as_str(),
            list[0].timezone.as_str(),
            list[0].enabled
        ),
        ("standup", "Europe/Paris", true)
    );
    let fired = c.run_schedule(dev, created.id).await.unwrap();
    assert_eq!((fired.status.as_str(), fired.workspace_id), ("fired", dev));
    let runs = eventually(Duration::from_secs(5), || async {
        let h = c.schedule_history(dev, created.id).await.ok()?;
        (!h.is_empty()).then_some(h)
    })
    .await
    .expect("history");
    assert!(runs[0].duration_ms.is_some());
    let health = c
        .clone()
        .with_workspace_id(Some(dev))
        .schedule_health(dev)
        .await
        .unwrap();
    assert_eq!(health[0].run_count, 1);

    let asked = c
        .request_approval(
            dev,
            &CreateApproval {
                action: "deploy".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(asked.status, molecule_types::ApprovalState::Pending);
    let pending = t.client.pending_approvals().await.unwrap();
    assert_eq!(
        (pending[0].workspace_name.as_str(), pending[0].id),
        ("dev", asked.approval_id)
    );
    let decided = c
        .decide_approval(
            dev,
            asked.approval_id,
            &DecideApproval {
                decision: "approved".into(),
                decided_by: Some("ops".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(decided.status, molecule_types::ApprovalState::Approved);
    assert_eq!(
        c.list_approvals(dev).await.unwrap()[0]
            .decided_by
            .as_deref(),
        Some("ops")
    );

    c.set_memory(
        dev,
        &SetMemoryEntry {
            key: "plan".into(),
            value: json!([1]),
            ttl_seconds: Some(60),
        },
    )
    .await
    .unwrap();
    assert!(c.memory(dev, "plan").await.unwrap().expires_at.is_some());
    c.commit_memory(
        dev,
        &CommitMemory {
            content: "rotate the org token monthly".into(),
            scope: "TEAM".into(),
            namespace: None,
        },
    )
    .await
    .unwrap();
    let found = c
        .search_memories(
            dev,
            &MemorySearch {
                scope: Some("TEAM".into()),
                q: Some("token invoice".into()),
                namespace: None,
            },
        )
        .await
        .unwrap();
    assert!(
        found.is_empty(),
        "plainto_tsquery semantics: every word must match"
    );
    let found = c
        .search_memories(
            dev,
            &MemorySearch {
                scope: Some("TEAM".into()),
                q: Some("rotate token".into()),
                namespace: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    c.patch_config(dev, &json!({"model": "gpt"})).await.unwrap();
    assert_eq!(
        c.config(dev).await.unwrap(),
        json!({"data": {"model": "gpt"}})
    );
    t.server.shutdown().await.unwrap();
}
