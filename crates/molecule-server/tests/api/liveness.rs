use molecule_types::WorkspaceStatus;
use molecule_types::dto::{CreateWorkspace, Heartbeat};
use std::time::Duration;

use crate::{eventually, start_with};
use molecule_server::clock::Clock;

#[tokio::test]
async fn silent_workspace_goes_offline_and_a_heartbeat_brings_it_back() {
    let t = start_with(|c| {
        c.liveness_ttl = Duration::from_millis(600);
    })
    .await;
    let id = t.create("w", None).await;
    let token = t.register(id).await;
    let mut stream = t.client.subscribe().await.unwrap();
    let offline = stream
        .next_matching(|e| e.event == "WORKSPACE_OFFLINE", Duration::from_secs(10))
        .await
        .unwrap()
        .expect("offline event");
    assert_eq!(offline.workspace_id, id.to_string());
    let ws = t.client.get_workspace(id).await.unwrap();
    assert_eq!(ws.status, WorkspaceStatus::Offline);
    assert!(ws.status_reason.unwrap().contains("no heartbeat"));
    t.heartbeat(id, &token, Heartbeat::default()).await;
    assert_eq!(
        t.client.get_workspace(id).await.unwrap().status,
        WorkspaceStatus::Online
    );
    // The deadline is armed again after recovery (fixes the reference's one-shot TTL).
    let again = stream
        .next_matching(|e| e.event == "WORKSPACE_OFFLINE", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(again.is_some(), "expires again after recovery");
}

#[tokio::test]
async fn heartbeats_keep_a_workspace_online() {
    let t = start_with(|c| c.liveness_ttl = Duration::from_millis(800)).await;
    let id = t.create("w", None).await;
    let token = t.register(id).await;
    let until = tokio::time::Instant::now() + Duration::from_millis(2500);
    while tokio::time::Instant::now() < until {
        t.heartbeat(id, &token, Heartbeat::default()).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            t.client.get_workspace(id).await.unwrap().status,
            WorkspaceStatus::Online
        );
    }
}

#[tokio::test]
async fn stale_external_workspaces_go_offline() {
    let clock = Clock::adjustable();
    let t = start_with(|c| {
        c.remote_stale_after = Duration::from_secs(60);
        c.clock = clock.clone();
    })
    .await;
    let req = CreateWorkspace {
        name: "remote".into(),
        external: true,
        url: Some("https://remote.example".into()),
        ..Default::default()
    };
    let id = t.client.create_workspace(&req).await.unwrap().id;
    clock.advance(Duration::from_secs(61));
    t.server.app.tasks().activate("external-staleness");
    let ws = eventually(Duration::from_secs(5), || async {
        let ws = t.client.get_workspace(id).await.unwrap();
        (ws.status == WorkspaceStatus::Offline).then_some(ws)
    })
    .await
    .expect("stale external workspace goes offline");
    assert!(ws.status_reason.unwrap().contains("external agent silent"));
}

#[tokio::test]
async fn admin_liveness_reports_every_task() {
    let t = start_with(|_| {}).await;
    let live = eventually(Duration::from_secs(5), || async {
        let l = t.client.liveness().await.unwrap();
        l.subsystems
            .values()
            .all(|s| s.last_tick_at.is_some())
            .then_some(l)
    })
    .await
    .expect("every task ticks");
    let names: Vec<&str> = live.subsystems.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "activity-retention",
            "activity-writer",
            "approval-expiry",
            "channels",
            "delegations",
            "external-staleness",
            "health-sweep",
            "heartbeat-flush",
            "liveness",
            "provision-watchdog",
            "provisioner",
            "rate-limit-gc",
            "restart-context",
            "scheduler",
            "upstream-idle"
        ]
    );
    assert!(
        live.subsystems
            .values()
            .all(|s| !s.stale && s.seconds_ago.is_some())
    );
    let r = t
        .client
        .request(molecule_client::Method::GET, "/readyz", None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A workspace whose deadline passed while the database refused the
/// verdict (another process holds SQLite's write lock past the busy
/// timeout) is judged again, not forgotten: offline once the lock goes.
/// (PostgreSQL waits on a lock instead of refusing; there the replicas
/// tests cut a replica's connections: `replicas::a_replica_cut_off_…`.)
#[tokio::test]
async fn a_verdict_the_database_refused_is_retried() {
    use sqlx::Connection;
    let t = start_with(|c| c.liveness_ttl = Duration::from_secs(3)).await;
    let molecule_server::config::Database::Sqlite(path) = t.server.app.config().database.clone()
    else {
        return;
    };
    let id = t.create("w", None).await;
    let _token = t.register(id).await;
    let mut stream = t.client.subscribe().await.unwrap();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("a second connection to the file");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("the write lock");
    assert_eq!(
        t.client.get_workspace(id).await.unwrap().status,
        WorkspaceStatus::Online,
        "still online when the lock was taken"
    );
    // The deadline passes; marking it offline fails after the busy timeout.
    let failed = eventually(Duration::from_secs(30), || async {
        t.server.app.tasks().snapshot()["liveness"]
            .last_error
            .clone()
    })
    .await
    .expect("the verdict could not be written");
    println!("liveness failed: {failed}");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let offline = stream
        .next_matching(
            |e| e.event == "WORKSPACE_OFFLINE" && e.workspace_id == id.to_string(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(offline.is_some(), "judged again once the lock went");
}
