//! The scheduler through the API: claiming under two schedulers, the
//! missed-run policy after downtime, busy and overlap skips, run-now and
//! removed workspaces.

use crate::schedules::{get, history, make_due, ts, workspace, yearly};
use crate::{TestServer, call, eventually, start, start_on, ticks};
use chrono::{Duration as Chrono, Utc};
use molecule_client::{Client, Method};
use molecule_types::dto::Heartbeat;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn schedules_two_schedulers_fire_a_due_run_once() {
    let t = start().await;
    let (ws, c) = workspace(&t, "ws", None).await;
    let id = yearly(&c, ws, "report").await;
    let database = t.server.app.config().database.clone();
    // SQLite is one process's database: the second is refused, and the one
    // scheduler fires the run once. On PostgreSQL both run (one leads).
    let replica = match database {
        molecule_server::config::Database::Sqlite(_) => {
            let refused = crate::try_start_on(database, |_| {})
                .await
                .err()
                .expect("a second process on the SQLite file is refused");
            assert!(
                format!("{refused:#}").contains("single-process"),
                "{refused:#}"
            );
            None
        }
        molecule_server::config::Database::Postgres(_) => Some(start_on(database, |_| {}).await),
    };
    make_due(&*t.store().await, ws, id, Chrono::minutes(1)).await;
    let ran = eventually(Duration::from_secs(10), || async {
        let r = get(&c, ws, id).await;
        (r["run_count"] == 1).then_some(r)
    })
    .await
    .expect("the due schedule fires");
    assert!(
        ts(&ran["next_run_at"]) > Utc::now() + Chrono::days(1),
        "next run is next year"
    );
    assert_eq!(ran["last_status"], "error", "no agent answers in this test");
    // Both schedulers run again: still exactly one run.
    ticks(&t.server.app, "scheduler", 2).await;
    if let Some(replica) = &replica {
        ticks(&replica.server.app, "scheduler", 2).await;
    }
    assert_eq!(get(&c, ws, id).await["run_count"], 1);
    let h = eventually(Duration::from_secs(5), || async {
        let h = history(&c, ws, id).await;
        (!h.is_empty()).then_some(h)
    })
    .await
    .expect("a history row");
    ticks(&t.server.app, "scheduler", 2).await;
    if let Some(replica) = &replica {
        ticks(&replica.server.app, "scheduler", 2).await;
    }
    let h2 = history(&c, ws, id).await;
    assert_eq!(h2.len(), 1, "one cron_run row across both replicas: {h:?}");
    assert_eq!(h2[0]["request"]["schedule_id"], json!(id));
    assert_eq!(h2[0]["request"]["prompt"], "yearly report");
    assert_eq!(h2[0]["status"], "error");
    // The run's row is written before its event: wait for the event.
    crate::lifecycle::wait_event(&t.client, ws, "CRON_EXECUTED").await;
    let events = t.client.events(Some(ws)).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "CRON_EXECUTED")
            .count(),
        1
    );
    if let Some(replica) = replica {
        replica.shutdown().await.unwrap();
    }
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn schedules_due_during_downtime_fire_once_after_start() {
    let t = start().await;
    let ws = t.create("ws", None).await;
    let token = t.register(ws).await;
    let c = t.as_workspace(ws, &token);
    let id = yearly(&c, ws, "hourly-ish").await;
    // Every minute, so three days of downtime miss ~4300 ticks.
    let (s, _) = call(
        &c,
        Method::PATCH,
        &format!("/workspaces/{ws}/schedules/{id}"),
        Some(json!({"cron_expr": "* * * * *"})),
    )
    .await;
    assert_eq!(s, 200);
    let database = t.server.app.config().database.clone();
    let TestServer { server, _dir, .. } = t;
    server.shutdown().await.unwrap();
    {
        let store = molecule_store::open(&database.store_url()).await.unwrap();
        make_due(&*store, ws, id, Chrono::days(3)).await;
    }
    let restarted = start_on(database, |_| {}).await;
    let c = Client::new(restarted.url()).with_token(Some(token));
    let r = eventually(Duration::from_secs(10), || async {
        let r = get(&c, ws, id).await;
        (r["run_count"] == 1).then_some(r)
    })
    .await
    .expect("the overdue schedule fires after start");
    let next = ts(&r["next_run_at"]);
    assert!(
        next > Utc::now() - Chrono::seconds(5) && next <= Utc::now() + Chrono::minutes(1),
        "next run computed from now: {next}"
    );
    assert!(ts(&r["last_run_at"]) > Utc::now() - Chrono::minutes(1));
    ticks(&restarted.server.app, "scheduler", 2).await;
    let after = get(&c, ws, id).await;
    if Utc::now() < next {
        assert_eq!(
            after["run_count"], 1,
            "once, not once per missed tick: {after}"
        );
    } else {
        // The next minute boundary passed meanwhile: one more regular run.
        assert!(after["run_count"].as_i64().unwrap() <= 2, "{after}");
    }
    restarted.shutdown().await.unwrap();
    drop(_dir);
}

#[tokio::test]
async fn schedules_busy_workspace_and_overlap_are_skipped_and_recorded() {
    let t = start().await;
    let id = t.create("busy", None).await;
    let token = t.register(id).await;
    let c = t.as_workspace(id, &token);
    let sid = yearly(&c, id, "busy-run").await;
    t.heartbeat(
        id,
        &token,
        Heartbeat {
            active_tasks: 2,
            ..Default::default()
        },
    )
    .await;
    make_due(&*t.store().await, id, sid, Chrono::seconds(5)).await;
    let r = eventually(Duration::from_secs(10), || async {
        let r = get(&c, id, sid).await;
        (r["run_count"] == 1).then_some(r)
    })
    .await
    .expect("skipped run recorded");
    assert_eq!(r["last_status"], "skipped");
    assert_eq!(r["last_error"], "skipped: workspace busy (active_tasks=2)");
    assert!(
        ts(&r["next_run_at"]) > Utc::now() + Chrono::days(1),
        "next_run_at advanced"
    );
    let h = eventually(Duration::from_secs(5), || async {
        let h = history(&c, id, sid).await;
        (!h.is_empty()).then_some(h)
    })
    .await
    .unwrap();
    assert_eq!(
        (
            h[0]["status"].as_str(),
            h[0]["request"]["skipped"].as_bool()
        ),
        (Some("skipped"), Some(true))
    );
    assert_eq!(h[0]["request"]["active_tasks"], 2);
    crate::lifecycle::wait_event(&t.client, id, "CRON_SKIPPED").await;
    let events = t.client.events(Some(id)).await.unwrap();
    let skipped: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "CRON_SKIPPED")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].payload["schedule_name"], "busy-run");

    // Overlap: while a run of this schedule is in flight, the next is skipped.
    t.heartbeat(
        id,
        &token,
        Heartbeat {
            active_tasks: 0,
            ..Default::default()
        },
    )
    .await;
    // Another replica's run of this schedule is in flight.
    let store = t.store().await;
    let now = Utc::now();
    assert!(
        store
            .schedule_begin_run(sid, now, now - Chrono::minutes(6))
            .await
            .unwrap()
    );
    make_due(&*t.store().await, id, sid, Chrono::seconds(5)).await;
    let r = eventually(Duration::from_secs(10), || async {
        let r = get(&c, id, sid).await;
        (r["run_count"] == 2).then_some(r)
    })
    .await
    .expect("overlapping run recorded");
    assert_eq!(
        (r["last_status"].as_str(), r["last_error"].as_str()),
        (
            Some("skipped"),
            Some("skipped: previous run still in flight")
        )
    );
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn schedules_run_now_fires_through_the_same_path() {
    let t = start().await;
    let (ws, c) = workspace(&t, "ws", None).await;
    let id = yearly(&c, ws, "manual").await;
    let before = get(&c, ws, id).await;
    let (s, body) = call(
        &c,
        Method::POST,
        &format!("/workspaces/{ws}/schedules/{id}/run"),
        None,
    )
    .await;
    assert_eq!(
        (s, body),
        (
            200,
            json!({"status": "fired", "workspace_id": ws, "prompt": "yearly report"})
        )
    );
    let r = eventually(Duration::from_secs(10), || async {
        let r = get(&c, ws, id).await;
        (r["run_count"] == 1).then_some(r)
    })
    .await
    .expect("run-now really runs");
    assert_eq!(
        r["next_run_at"], before["next_run_at"],
        "run-now leaves the cadence alone"
    );
    assert!(!r["last_run_at"].is_null());
    let h = eventually(Duration::from_secs(5), || async {
        let h = history(&c, ws, id).await;
        (!h.is_empty()).then_some(h)
    })
    .await
    .unwrap();
    assert_eq!(h[0]["request"]["trigger"], "run_now");
    let (s, _) = call(
        &c,
        Method::POST,
        &format!("/workspaces/{ws}/schedules/{}/run", Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(s, 404);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn schedules_of_removed_workspaces_stop() {
    let t = start().await;
    let (ws, c) = workspace(&t, "doomed", None).await;
    let id = yearly(&c, ws, "orphan").await;
    t.client.delete_workspace(ws, true).await.unwrap();
    make_due(&*t.store().await, ws, id, Chrono::seconds(5)).await;
    ticks(&t.server.app, "scheduler", 2).await;
    let row = t
        .store()
        .await
        .schedule_get(ws.into(), id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.run_count, 0,
        "a removed workspace's schedule never fires"
    );
    t.server.shutdown().await.unwrap();
}

/// A due schedule fires through the real proxy to a real agent: `ok`, a
/// history row, `CRON_EXECUTED {status: ok}`, and the agent logged the call.
#[tokio::test]
async fn schedules_fire_to_a_real_agent_and_record_ok() {
    let t = start().await;
    let (ws, token, _agent) = crate::a2a::agent_workspace(&t, "cron-target", None).await;
    let c = t.as_workspace(ws, &token);
    let id = yearly(&c, ws, "daily digest").await;
    make_due(&*t.store().await, ws, id, Chrono::seconds(5)).await;
    let r = eventually(Duration::from_secs(10), || async {
        let r = get(&c, ws, id).await;
        (r["run_count"] == 1).then_some(r)
    })
    .await
    .expect("the scheduler fired");
    assert_eq!(r["last_status"], "ok", "{r}");
    let h = eventually(Duration::from_secs(5), || async {
        let h = history(&c, ws, id).await;
        (!h.is_empty()).then_some(h)
    })
    .await
    .unwrap();
    assert_eq!(h[0]["status"], "ok");
    // The run's row is written before its event: wait for the event.
    crate::lifecycle::wait_event(&t.client, ws, "CRON_EXECUTED").await;
    let executed = t
        .client
        .events(Some(ws))
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event_type == "CRON_EXECUTED")
        .expect("CRON_EXECUTED");
    assert_eq!(executed.payload["status"], "ok");
    let received = eventually(Duration::from_secs(5), || async {
        let rows = c.activity(ws, "type=a2a_receive").await.unwrap();
        rows.into_iter().next()
    })
    .await
    .expect("the agent's side of the call is logged");
    assert_eq!(received["status"], "ok");
    let text = received["request_body"]["params"]["message"]["parts"][0]["text"].clone();
    assert_eq!(text, "yearly report");
    let mid = received["request_body"]["params"]["message"]["messageId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        mid.starts_with(&format!("cron-{}-", &id.to_string()[..8])),
        "{mid}"
    );
}

/// An agent answering non-2xx makes the run `error` with `HTTP <code>`.
#[tokio::test]
async fn schedules_record_an_agent_error_as_http_status() {
    let t = start().await;
    let (url, _up) = crate::a2a::spawn_upstream(|_| (500, json!({"error": "down"}))).await;
    let (ws, token) = crate::a2a::workspace_at(&t, "broken", None, &url).await;
    let c = t.as_workspace(ws, &token);
    let id = yearly(&c, ws, "doomed").await;
    make_due(&*t.store().await, ws, id, Chrono::seconds(5)).await;
    let r = eventually(Duration::from_secs(10), || async {
        let r = get(&c, ws, id).await;
        (r["run_count"] == 1).then_some(r)
    })
    .await
    .expect("the scheduler fired");
    assert_eq!(r["last_status"], "error");
    assert_eq!(r["last_error"], "HTTP 500");
}
