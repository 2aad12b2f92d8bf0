//! Delegation (api-contract §5.6) and activity, notify, session search,
//! retention (§5.7), with real in-process agents behind the proxy.

use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

use crate::a2a::{agent_workspace, spawn_upstream, workspace_at};
use crate::{eventually, start, start_with};

async fn wait_delegation(
    c: &molecule_client::Client,
    source: Uuid,
    delegation_id: &str,
    status: &str,
) -> Vec<Value> {
    eventually(Duration::from_secs(20), || async {
        let rows = c.delegations(source).await.unwrap();
        rows.iter()
            .any(|r| {
                r["type"] == "delegate"
                    && r["delegation_id"] == delegation_id
                    && r["status"] == status
            })
            .then_some(rows)
    })
    .await
    .unwrap_or_else(|| panic!("delegation {delegation_id} never became {status}"))
}

#[tokio::test]
async fn a_delegation_completes_with_the_agents_reply() {
    let t = start().await;
    let (parent, parent_token, _g1) = agent_workspace(&t, "lead", None).await;
    let (child, _, _g2) = agent_workspace(&t, "worker", Some(parent)).await;
    let lead = t.as_workspace(parent, &parent_token);
    let r = lead
        .delegate(parent, child, "summarise the logs", None)
        .await
        .unwrap();
    assert_eq!(r["status"], "delegated");
    assert_eq!(r["target_id"], child.to_string());
    let id = r["delegation_id"].as_str().unwrap().to_string();
    let rows = wait_delegation(&lead, parent, &id, "completed").await;
    let result = rows
        .iter()
        .find(|r| r["type"] == "delegate_result" && r["delegation_id"] == id.as_str())
        .expect("a result row");
    assert_eq!(result["status"], "completed");
    assert_eq!(result["response_preview"], "echo: summarise the logs");
    // The result row and the completion event are written one after the
    // other: wait for the event rather than read once.
    for want in [
        "DELEGATION_SENT",
        "DELEGATION_STATUS",
        "DELEGATION_COMPLETE",
    ] {
        crate::lifecycle::wait_event(&t.client, parent, want).await;
    }
    // The target logged the call, with the source as caller.
    let worker_rows = eventually(Duration::from_secs(5), || async {
        let token = t.client.test_token(child).await.unwrap().auth_token;
        let rows = t
            .as_workspace(child, &token)
            .activity(child, "source=agent")
            .await
            .unwrap();
        (!rows.is_empty()).then_some(rows)
    })
    .await
    .expect("a2a_receive on the target");
    assert_eq!(worker_rows[0]["source_id"], parent.to_string());
}

#[tokio::test]
async fn an_idempotency_key_never_creates_a_second_delegation() {
    let t = start().await;
    let (parent, token, _g1) = agent_workspace(&t, "lead", None).await;
    let (child, _, _g2) = agent_workspace(&t, "worker", Some(parent)).await;
    let lead = t.as_workspace(parent, &token);
    let first = lead
        .delegate(parent, child, "once", Some("key-1"))
        .await
        .unwrap();
    let again = lead
        .delegate(parent, child, "once", Some("key-1"))
        .await
        .unwrap();
    assert_eq!(again["idempotent_hit"], true);
    assert_eq!(again["delegation_id"], first["delegation_id"]);
    let id = first["delegation_id"].as_str().unwrap();
    let rows = wait_delegation(&lead, parent, id, "completed").await;
    assert_eq!(rows.iter().filter(|r| r["type"] == "delegate").count(), 1);
    let after = lead
        .delegate(parent, child, "once", Some("key-1"))
        .await
        .unwrap();
    assert_eq!(
        after["status"], "completed",
        "a finished delegation is still a hit"
    );
}

#[tokio::test]
async fn agent_errors_fail_a_delegation_and_a_failed_key_can_be_reused() {
    let t = start().await;
    let (parent, token, _g) = agent_workspace(&t, "lead", None).await;
    let (url, up) = spawn_upstream(|_| (500, json!({"error": "kaput"}))).await;
    let (broken, _) = workspace_at(&t, "broken", Some(parent), &url).await;
    let lead = t.as_workspace(parent, &token);
    let r = lead
        .delegate(parent, broken, "try", Some("k"))
        .await
        .unwrap();
    let id = r["delegation_id"].as_str().unwrap().to_string();
    let rows = wait_delegation(&lead, parent, &id, "failed").await;
    let tracking = rows.iter().find(|r| r["type"] == "delegate").unwrap();
    assert_eq!(tracking["error"], "HTTP 500");
    // The row is written before its event: wait for the event.
    let failed = eventually(Duration::from_secs(10), || async {
        let events = t.client.events(Some(parent)).await.ok()?;
        events
            .into_iter()
            .find(|e| e.event_type == "DELEGATION_FAILED")
    })
    .await
    .expect("DELEGATION_FAILED");
    assert_eq!(failed.payload["error"], "HTTP 500");
    assert_eq!(up.hits.load(Ordering::SeqCst), 1, "a 500 is not retried");
    let retry = lead
        .delegate(parent, broken, "try", Some("k"))
        .await
        .unwrap();
    assert_ne!(
        retry["delegation_id"], r["delegation_id"],
        "a failed key starts anew"
    );
    assert!(retry.get("idempotent_hit").is_none());
}

#[tokio::test]
async fn a_busy_answer_is_retried_once() {
    let t = start_with(|c| c.delegation_retry_after = Duration::from_millis(100)).await;
    let (parent, token, _g) = agent_workspace(&t, "lead", None).await;
    let (url, up) = spawn_upstream(|n| {
        if n == 0 {
            (503, json!({"error": "warming up"}))
        } else {
            (200, json!({"jsonrpc": "2.0", "id": 1, "result": {"kind": "message", "parts": [{"kind": "text", "text": "done"}]}}))
        }
    })
    .await;
    let (flaky, _) = workspace_at(&t, "flaky", Some(parent), &url).await;
    let lead = t.as_workspace(parent, &token);
    let r = lead.delegate(parent, flaky, "go", None).await.unwrap();
    let id = r["delegation_id"].as_str().unwrap().to_string();
    let rows = wait_delegation(&lead, parent, &id, "completed").await;
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);
    let result = rows
        .iter()
        .find(|r| r["type"] == "delegate_result")
        .unwrap();
    assert_eq!(result["response_preview"], "done");
}

#[tokio::test]
async fn delegation_input_and_access_are_checked_up_front() {
    let t = start().await;
    let (a, ta, _g1) = agent_workspace(&t, "a", None).await;
    let (b, _, _g2) = agent_workspace(&t, "b", Some(a)).await;
    let (c, _, _g3) = agent_workspace(&t, "c", Some(b)).await;
    let (x, tx, _g4) = agent_workspace(&t, "x", None).await;
    let (y, _, _g5) = agent_workspace(&t, "y", Some(x)).await;
    let _ = c;
    let ax = t.as_workspace(a, &ta);
    let path = format!("/workspaces/{a}/delegate");
    let bad = |body: Value| {
        let ax = ax.clone();
        let path = path.clone();
        async move {
            ax.request(molecule_client::Method::POST, &path, Some(&body))
                .await
                .unwrap()
        }
    };
    let r = bad(json!({"target_id": "nope", "task": "t"})).await;
    assert_eq!(
        (r.status, r.json().unwrap()["error"].clone()),
        (400, json!("target_id must be a valid UUID"))
    );
    let r = bad(json!({"target_id": b, "task": ""})).await;
    assert_eq!(r.status, 400);
    let r = bad(json!({"target_id": Uuid::new_v4(), "task": "t"})).await;
    assert_eq!(r.status, 404);
    let r = t
        .as_workspace(x, &tx)
        .request(
            molecule_client::Method::POST,
            &format!("/workspaces/{x}/delegate"),
            Some(&json!({"target_id": b, "task": "t"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403, "x's subtree cannot reach b: {}", r.text());
    let _ = y;
    // Workspace auth: no token, another workspace's token.
    let r = t
        .client
        .request(
            molecule_client::Method::POST,
            &path,
            Some(&json!({"target_id": b, "task": "t"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert!(
        ax.delegations(a).await.unwrap().is_empty(),
        "nothing was recorded"
    );
}

#[tokio::test]
async fn agents_record_and_update_their_own_delegations() {
    let t = start().await;
    let (a, ta, _g1) = agent_workspace(&t, "a", None).await;
    let (b, _, _g2) = agent_workspace(&t, "b", Some(a)).await;
    let me = t.as_workspace(a, &ta);
    let record = json!({"target_id": b, "task": "manual", "delegation_id": "d-1"});
    for _ in 0..2 {
        let r = me
            .request(
                molecule_client::Method::POST,
                &format!("/workspaces/{a}/delegations/record"),
                Some(&record),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 202);
        assert_eq!(
            r.json().unwrap(),
            json!({"delegation_id": "d-1", "status": "recorded"})
        );
    }
    let rows = me.delegations(a).await.unwrap();
    assert_eq!(rows.len(), 1, "recording twice keeps one row: {rows:?}");
    assert_eq!(rows[0]["status"], "dispatched");
    let update = |id: &str, body: Value| {
        let me = me.clone();
        let path = format!("/workspaces/{a}/delegations/{id}/update");
        async move {
            me.request(molecule_client::Method::POST, &path, Some(&body))
                .await
                .unwrap()
        }
    };
    let r = update("d-1", json!({"status": "working"})).await;
    assert_eq!(r.status, 400);
    let r = update("unknown", json!({"status": "completed"})).await;
    assert_eq!(r.status, 404);
    let r = update(
        "d-1",
        json!({"status": "completed", "response_preview": "all good"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let rows = me.delegations(a).await.unwrap();
    let tracking = rows.iter().find(|r| r["type"] == "delegate").unwrap();
    assert_eq!(tracking["status"], "completed");
    let result = rows
        .iter()
        .find(|r| r["type"] == "delegate_result")
        .unwrap();
    assert_eq!(result["response_preview"], "all good");
}

#[tokio::test]
async fn agents_report_activity_and_read_it_back_filtered() {
    let t = start().await;
    let (a, ta, _g) = agent_workspace(&t, "a", None).await;
    let (b, tb, _g2) = agent_workspace(&t, "b", None).await;
    let me = t.as_workspace(a, &ta);
    let mut ws = me.subscribe().await.unwrap();
    me.report_activity(a, &json!({"activity_type": "agent_log", "summary": "indexed 100% of files", "metadata": {"files": 12}}))
        .await
        .unwrap();
    let ev = ws
        .next_matching(|e| e.event == "ACTIVITY_LOGGED", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("ACTIVITY_LOGGED");
    assert_eq!(ev.payload["activity_type"], "agent_log");
    me.report_activity(a, &json!({"activity_type": "task_update", "summary": "step two", "status": "error", "error_detail": "disk full"}))
        .await
        .unwrap();
    let err = me
        .report_activity(a, &json!({"activity_type": "made_up"}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    let err = me
        .report_activity(a, &json!({"activity_type": "agent_log", "source_id": b}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    let err = t
        .as_workspace(b, &tb)
        .report_activity(a, &json!({"activity_type": "agent_log"}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "another workspace's token");

    let rows = eventually(Duration::from_secs(5), || async {
        let rows = me.activity(a, "").await.unwrap();
        (rows.len() == 2).then_some(rows)
    })
    .await
    .expect("two rows");
    assert_eq!(rows[0]["activity_type"], "task_update", "newest first");
    assert_eq!(
        rows[1]["request_body"]["files"], 12,
        "metadata stands in for request_body"
    );
    assert_eq!(rows[1]["source_id"], a.to_string());
    assert_eq!(me.activity(a, "type=agent_log").await.unwrap().len(), 1);
    assert_eq!(me.activity(a, "limit=1").await.unwrap().len(), 1);
    assert_eq!(me.activity(a, "source=canvas").await.unwrap().len(), 0);
    assert_eq!(
        me.activity(a, "source=robots").await.unwrap_err().status(),
        Some(400)
    );

    // Session search: case-insensitive substring, wildcards are literal.
    let hits = me.session_search(a, "DISK").await.unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["kind"], "activity");
    assert_eq!(me.session_search(a, "100%").await.unwrap().len(), 1);
    assert_eq!(
        me.session_search(a, "%").await.unwrap().len(),
        1,
        "% is not a wildcard"
    );
    assert_eq!(me.session_search(a, "").await.unwrap().len(), 2);
}

#[tokio::test]
async fn notify_reaches_the_watchers() {
    let t = start().await;
    let (a, ta, _g) = agent_workspace(&t, "a", None).await;
    let me = t.as_workspace(a, &ta);
    let mut ws = t.client.subscribe().await.unwrap();
    assert_eq!(me.notify(a, "  ").await.unwrap_err().status(), Some(400));
    me.notify(a, "build finished").await.unwrap();
    let ev = ws
        .next_matching(|e| e.event == "AGENT_MESSAGE", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("AGENT_MESSAGE");
    assert_eq!(ev.payload["message"], "build finished");
    assert_eq!(ev.payload["name"], "a");
}

#[tokio::test]
async fn retention_deletes_old_activity() {
    let t = start_with(|c| {
        c.activity_retention = Duration::from_millis(300);
        c.activity_cleanup_every = Duration::from_millis(100);
    })
    .await;
    let (a, ta, _g) = agent_workspace(&t, "a", None).await;
    let me = t.as_workspace(a, &ta);
    me.report_activity(
        a,
        &json!({"activity_type": "agent_log", "summary": "old news"}),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(5), || async {
        (me.activity(a, "").await.unwrap().len() == 1).then_some(())
    })
    .await
    .expect("written");
    eventually(Duration::from_secs(10), || async {
        me.activity(a, "").await.unwrap().is_empty().then_some(())
    })
    .await
    .expect("purged after the retention period");
}

#[tokio::test]
async fn delegations_survive_a_platform_restart() {
    use molecule_store::NewActivity;
    let t = start().await;
    let (parent, token, _g1) = agent_workspace(&t, "lead", None).await;
    let (echo, _, _g2) = agent_workspace(&t, "echo", Some(parent)).await;
    // A target that takes the call and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_url = format!("http://localhost:{}", hang.local_addr().unwrap().port());
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = hang.accept().await {
            keep.lock().unwrap().push(sock);
        }
    });
    let (silent, _) = workspace_at(&t, "silent", Some(parent), &hang_url).await;
    let lead = t.as_workspace(parent, &token);
    let r = lead
        .delegate(parent, silent, "never answered", None)
        .await
        .unwrap();
    let in_flight = r["delegation_id"].as_str().unwrap().to_string();
    wait_delegation(&lead, parent, &in_flight, "dispatched").await;

    // A delegation accepted but not yet sent when the platform stopped.
    let waiting = Uuid::new_v4().to_string();
    let mut row = NewActivity::new(parent, molecule_types::ActivityType::Delegation);
    row.source_id = Some(parent);
    row.target_id = Some(echo);
    row.method = Some("delegate".into());
    row.status = "pending".into();
    row.request_body = Some(json!({
        "task": "sent after the restart",
        "delegation_id": waiting,
        "dispatched_by": "platform",
    }));

    let crate::TestServer { server, _dir, .. } = t;
    assert!(
        crate::store_of(&server)
            .await
            .activity_insert(&row)
            .await
            .unwrap()
    );
    let database = server.app.config().database.clone();
    server.shutdown().await.unwrap();
    let replica = crate::start_on(database, |_| {}).await;
    let lead = molecule_client::Client::new(replica.url()).with_token(Some(token));

    let rows = wait_delegation(&lead, parent, &in_flight, "failed").await;
    let tracking = rows
        .iter()
        .find(|r| r["type"] == "delegate" && r["delegation_id"] == in_flight.as_str())
        .unwrap();
    let error = tracking["error"].as_str().unwrap();
    assert!(error.contains("platform restarted"), "{error}");
    assert!(
        rows.iter().any(|r| r["type"] == "delegate_result"
            && r["delegation_id"] == in_flight.as_str()
            && r["status"] == "failed"),
        "a failed result row: {rows:?}"
    );
    let rows = wait_delegation(&lead, parent, &waiting, "completed").await;
    let result = rows
        .iter()
        .find(|r| r["type"] == "delegate_result" && r["delegation_id"] == waiting.as_str())
        .expect("a result row");
    assert_eq!(result["response_preview"], "echo: sent after the restart");
    for (kind, id) in [
        ("DELEGATION_FAILED", &in_flight),
        ("DELEGATION_COMPLETE", &waiting),
    ] {
        let seen = eventually(Duration::from_secs(10), || async {
            let events = lead.events(Some(parent)).await.unwrap();
            events
                .iter()
                .any(|e| e.event_type == kind && e.payload["delegation_id"] == id.as_str())
                .then_some(())
        })
        .await;
        assert!(seen.is_some(), "{kind} for {id}");
    }
    replica.shutdown().await.unwrap();
    drop(held);
}
