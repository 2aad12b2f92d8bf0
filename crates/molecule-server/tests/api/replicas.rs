//! Several platform processes on one database. On PostgreSQL one replica
//! leads each singleton background task (a session advisory lock) and the
//! others stand by; `kill -9` of the leader hands every such task to
//! another replica. SQLite is one process: a second is refused.

use molecule_server::background::tasks::SINGLETONS;
use molecule_server::config::Database;
use std::time::{Duration, Instant};

use molecule_client::{Client, EventStream, Method};
use molecule_testkit::CutRelay;
use serde_json::json;
use uuid::Uuid;

use crate::adversarial::activity::spawn_platform;
use crate::{Replica, call, eventually, fresh_database, start_on, try_start_on};

#[tokio::test]
async fn a_killed_leader_hands_every_singleton_task_to_another_replica() {
    let (database, dir) = fresh_database().await;
    let data_dir = dir.unwrap_or_default();
    // The leader: a real `molecule serve`, so it can be killed for real.
    let (mut leader, url) = spawn_platform(&database, &data_dir).await;
    let client = Client::new(url.clone());
    let liveness = || async {
        let (status, body) = call(
            &client,
            molecule_client::Method::GET,
            "/admin/liveness",
            None,
        )
        .await;
        (status == 200).then_some(body)
    };
    // It leads once its tasks ran (its scheduler runs at start).
    eventually(Duration::from_secs(20), || async {
        let v = liveness().await?;
        let s = &v["subsystems"];
        SINGLETONS
            .iter()
            .all(|t| s[*t]["last_tick_at"].is_string())
            .then_some(())
    })
    .await
    .expect("the first replica's tasks run");

    if matches!(database, Database::Sqlite(_)) {
        // One embedded database, one process: a second is refused, with
        // the way out in the message.
        let refused = try_start_on(database.clone(), |_| {})
            .await
            .err()
            .expect("a second process on the SQLite file is refused");
        let msg = format!("{refused:#}");
        assert!(
            msg.contains("single-process") && msg.contains("PostgreSQL"),
            "{msg}"
        );
        return;
    }
    // Two more replicas, in this process, so their task states are seen.
    let survivors = [
        start_on(database.clone(), |_| {}).await,
        start_on(database.clone(), |_| {}).await,
    ];
    let state = |r: usize, t: &str| {
        survivors[r]
            .server
            .app
            .tasks()
            .snapshot()
            .get(t)
            .map(|s| s.state.as_str())
            .unwrap_or_default()
    };
    let states = || {
        SINGLETONS
            .iter()
            .map(|t| (*t, state(0, t), state(1, t)))
            .collect::<Vec<_>>()
    };
    // Every singleton stands by on both while the first lives, and the
    // first says it runs them.
    eventually(Duration::from_secs(10), || async {
        SINGLETONS
            .iter()
            .all(|t| state(0, t) == "standby" && state(1, t) == "standby")
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the other replicas stand by: {:?}", states()));
    let led = liveness().await.expect("the leader answers");
    for t in SINGLETONS {
        assert_ne!(led["subsystems"][*t]["state"], "standby", "{t}: {led}");
    }

    leader.start_kill().expect("SIGKILL");
    let killed = Instant::now();
    let _ = leader.wait().await;
    let took: std::sync::Mutex<Vec<(&str, Duration)>> = Default::default();
    let all = eventually(Duration::from_secs(20), || async {
        let mut took = took.lock().unwrap();
        for t in SINGLETONS {
            let led = state(0, t) != "standby" || state(1, t) != "standby";
            if !took.iter().any(|(n, _)| n == t) && led {
                took.push((t, killed.elapsed()));
            }
        }
        (took.len() == SINGLETONS.len()).then_some(())
    })
    .await;
    let took = took.into_inner().unwrap();
    println!("takeover after kill -9 of the leader: {took:?}");
    assert!(
        all.is_some(),
        "every singleton task moves to a survivor: {took:?}"
    );
    // Within two of its periods (a task with a shorter period than a
    // second gets two seconds: the lock goes when PostgreSQL sees the dead
    // session, then a stand-by replica's next check takes it).
    let periods = survivors[0].server.app.tasks().snapshot();
    for (t, after) in &took {
        let bound = periods[t].period.max(Duration::from_secs(1)) * 2;
        assert!(*after <= bound, "{t} took {after:?} (bound {bound:?})");
    }
    // One survivor runs each task, never both.
    for (t, a, b) in states() {
        assert!(
            (a == "standby") != (b == "standby"),
            "{t}: exactly one survivor leads it ({a}, {b})"
        );
    }
    for r in survivors {
        r.shutdown().await.unwrap();
    }
}

/// A leader that is alive but stopped (`SIGSTOP`: a frozen VM, a
/// debugger) keeps its database session, and TCP keepalives cannot tell.
/// It no longer touches that session, so after 30 s another replica ends
/// it and takes every singleton task; resumed, the old leader finds its
/// session gone and stands by: never two leaders of a task.
#[tokio::test]
async fn a_stopped_leader_is_evicted_and_stands_by_when_it_resumes() {
    let (database, dir) = fresh_database().await;
    if matches!(database, Database::Sqlite(_)) {
        // One process on SQLite (a_killed_leader_… checks the refusal).
        return;
    }
    let data_dir = dir.unwrap_or_default();
    let (mut leader, url) = spawn_platform(&database, &data_dir).await;
    let client = Client::new(url);
    let leader_states = || async {
        let (status, v) = call(&client, Method::GET, "/admin/liveness", None).await;
        (status == 200).then(|| {
            SINGLETONS
                .iter()
                .map(|t| {
                    v["subsystems"][*t]["state"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
    };
    eventually(Duration::from_secs(20), || async {
        let states = leader_states().await?;
        states
            .iter()
            .all(|s| !s.is_empty() && s != "standby")
            .then_some(())
    })
    .await
    .expect("the first replica leads every singleton task");
    let other = start_on(database.clone(), |_| {}).await;
    let other_leads = |t: &str| other.server.app.tasks().snapshot()[t].state.as_str() != "standby";
    eventually(Duration::from_secs(10), || async {
        SINGLETONS.iter().all(|t| !other_leads(t)).then_some(())
    })
    .await
    .expect("the second stands by");

    let pid = leader.id().expect("a pid").to_string();
    let signal = |s: &str| {
        let ok = std::process::Command::new("kill")
            .args([s, pid.as_str()])
            .status()
            .is_ok_and(|st| st.success());
        assert!(ok, "kill {s} {pid}");
    };
    signal("-STOP");
    let stopped = Instant::now();
    eventually(Duration::from_secs(60), || async {
        SINGLETONS.iter().all(|t| other_leads(t)).then_some(())
    })
    .await
    .expect("the second takes every task from the stopped one");
    let took = stopped.elapsed();
    println!("every task taken from the stopped leader after {took:?}");
    // Not before its session had been silent for 30 s (its last touch was
    // at most 5 s before the stop).
    assert!(took >= Duration::from_secs(24), "taken too early: {took:?}");

    signal("-CONT");
    eventually(Duration::from_secs(20), || async {
        let states = leader_states().await?;
        states.iter().all(|s| s == "standby").then_some(())
    })
    .await
    .expect("the resumed one stands by on every task");
    for t in SINGLETONS {
        assert!(other_leads(t), "{t} still led by the second");
    }
    let _ = leader.start_kill();
    let _ = leader.wait().await;
    other.shutdown().await.unwrap();
}

/// Three replicas on one fresh database. SQLite refuses a second process:
/// that refusal is checked instead, and `None` returned.
pub async fn three(
    tweak: impl Fn(&mut molecule_server::config::Config) + Clone,
) -> Option<[Replica; 3]> {
    let (database, _dir) = fresh_database().await;
    let first = start_on(database.clone(), tweak.clone()).await;
    if matches!(database, Database::Sqlite(_)) {
        let refused = try_start_on(database, tweak).await.err();
        assert!(
            refused.is_some_and(|e| format!("{e:#}").contains("single-process")),
            "a second process on the SQLite file is refused"
        );
        first.shutdown().await.unwrap();
        return None;
    }
    let second = start_on(database.clone(), tweak.clone()).await;
    let third = start_on(database, tweak).await;
    Some([first, second, third])
}

/// A replica on `database` (PostgreSQL) that reaches it through a relay
/// the test cuts: a partition between that replica and the database.
pub async fn start_cut_off(
    database: &Database,
    tweak: impl FnOnce(&mut molecule_server::config::Config),
) -> (Replica, CutRelay) {
    let Database::Postgres(url) = database else {
        panic!("a relay goes in front of PostgreSQL only");
    };
    let (head, tail) = url.split_once('@').expect("postgres://user@host:port/db");
    let (server, name) = tail.split_once('/').expect("postgres://user@host:port/db");
    let target = tokio::net::lookup_host(server)
        .await
        .expect("the database's address")
        .next()
        .expect("an address");
    let relay = CutRelay::start(target).await.expect("relay");
    let through = Database::Postgres(format!("{head}@{}/{name}", relay.addr()));
    (start_on(through, tweak).await, relay)
}

/// Three replicas on one fresh database, the second ([`start_cut_off`])
/// through a relay the test cuts; `None` on SQLite (one process: [`three`]
/// checks the refusal).
pub async fn three_one_cut_off(
    tweak: impl Fn(&mut molecule_server::config::Config) + Clone,
) -> Option<([Replica; 3], CutRelay)> {
    let (database, _dir) = fresh_database().await;
    if matches!(database, Database::Sqlite(_)) {
        return None;
    }
    let a = start_on(database.clone(), tweak.clone()).await;
    let (b, relay) = start_cut_off(&database, tweak.clone()).await;
    let c = start_on(database, tweak).await;
    Some(([a, b, c], relay))
}

pub async fn shutdown_all(replicas: [Replica; 3]) {
    for r in replicas {
        r.shutdown().await.unwrap();
    }
}

fn client(r: &Replica) -> Client {
    Client::new(r.url())
}

/// A heartbeat of `ws` sent to replica `r`; the status code.
async fn beat(r: &Replica, ws: Uuid, token: &str, error_rate: f64) -> u16 {
    let c = client(r)
        .with_workspace_id(Some(ws))
        .with_token(Some(token.to_string()));
    let body = json!({ "workspace_id": ws, "error_rate": error_rate, "sample_error": "" });
    call(&c, Method::POST, "/registry/heartbeat", Some(body))
        .await
        .0
}

async fn register(r: &Replica, ws: Uuid) -> String {
    let body = json!({
        "id": ws,
        "url": format!("http://agent-{}.test:8000", &ws.to_string()[..8]),
        "agent_card": { "name": "agent" },
    });
    let (s, reg) = call(&client(r), Method::POST, "/registry/register", Some(body)).await;
    assert_eq!(s, 200, "{reg}");
    reg["auth_token"].as_str().expect("a token").to_string()
}

async fn create(r: &Replica, name: &str) -> Uuid {
    let req = molecule_types::dto::CreateWorkspace {
        name: name.into(),
        ..Default::default()
    };
    client(r).create_workspace(&req).await.expect("create").id
}

/// Waits for `event` about `ws` on `stream`; the envelopes seen on the way.
async fn await_event(stream: &mut EventStream, ws: Uuid, event: &str) {
    let ws = ws.to_string();
    stream
        .next_matching(
            |e| e.workspace_id == ws && e.event == event,
            Duration::from_secs(10),
        )
        .await
        .expect("the stream stays open")
        .unwrap_or_else(|| panic!("{event} of {ws} arrives"));
}

#[tokio::test]
async fn events_and_cache_invalidations_reach_every_replica_in_order() {
    let Some([a, b, c]) = three(|_| {}).await else {
        return;
    };
    // Operators watching B and C (development mode: every event).
    let mut on_b = client(&b).subscribe().await.expect("/ws on B");
    let mut on_c = client(&c).subscribe().await.expect("/ws on C");
    let caused = Instant::now();
    let ws = create(&a, "w").await;
    await_event(&mut on_c, ws, "WORKSPACE_PROVISIONING").await;
    println!(
        "an event caused on A reached C's /ws after {:?}",
        caused.elapsed()
    );
    let token = register(&b, ws).await;
    // B caches the workspace's status (online) while handling a beat…
    assert_eq!(beat(&b, ws, &token, 0.0).await, 200);
    // …A degrades it; once B has seen the event, its cache was dropped
    // (the invalidation travels before the event, on one queue)…
    assert_eq!(beat(&a, ws, &token, 0.9).await, 200);
    await_event(&mut on_b, ws, "WORKSPACE_DEGRADED").await;
    // …so a healthy beat on B recovers it: B read the row again.
    assert_eq!(beat(&b, ws, &token, 0.0).await, 200);
    let (s, _) = call(
        &client(&a),
        Method::DELETE,
        &format!("/workspaces/{ws}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // C saw every status event of the workspace, each once, in order,
    // whichever replica caused it.
    let mut seen = Vec::new();
    let id = ws.to_string();
    while seen.last().map(String::as_str) != Some("WORKSPACE_REMOVED") {
        let e = on_c
            .next_matching(
                |e| e.workspace_id == id && e.event.starts_with("WORKSPACE_"),
                Duration::from_secs(10),
            )
            .await
            .expect("open")
            .unwrap_or_else(|| panic!("more events on C after {seen:?}"));
        seen.push(e.event);
    }
    assert_eq!(
        seen,
        [
            "WORKSPACE_ONLINE",
            "WORKSPACE_DEGRADED",
            "WORKSPACE_ONLINE",
            "WORKSPACE_REMOVED"
        ],
        "events on C after PROVISIONING"
    );
    shutdown_all([a, b, c]).await;
}

/// A batch of notes the database refused (here a trigger rejects the row
/// a long note travels in) is sent again once it is accepted: the other
/// replicas get every event, late but once, and what was queued after it
/// does not overtake it. (Before, the batch was dropped with a warning and
/// the others never heard of it.)
#[tokio::test]
async fn notes_the_database_refused_are_sent_again_in_order() {
    use sqlx::Connection;
    let Some([a, b, c]) = three(|_| {}).await else {
        return;
    };
    let Database::Postgres(url) = a.server.app.config().database.clone() else {
        unreachable!("replicas run on PostgreSQL");
    };
    let mut db = sqlx::PgConnection::connect(&url).await.expect("connect");
    let ws = create(&a, "w").await;
    let token = register(&a, ws).await;
    let mut on_b = client(&b).subscribe().await.expect("/ws on B");
    sqlx::raw_sql(
        "CREATE FUNCTION molecule_t_refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
         CREATE TRIGGER molecule_t_refuse BEFORE INSERT ON bus_messages
           FOR EACH ROW EXECUTE FUNCTION molecule_t_refuse();",
    )
    .execute(&mut db)
    .await
    .expect("the trigger");
    let agent = client(&a)
        .with_workspace_id(Some(ws))
        .with_token(Some(token));
    let card = |agent_card: serde_json::Value| {
        let agent = agent.clone();
        async move {
            let body = json!({ "workspace_id": ws, "agent_card": agent_card });
            let (s, v) = call(&agent, Method::POST, "/registry/update-card", Some(body)).await;
            assert_eq!(s, 200, "{v}");
        }
    };
    // Too long for a notification: its event's note needs a row. Then a
    // short one, queued behind it.
    card(json!({ "name": "long", "description": "x".repeat(9000) })).await;
    card(json!({ "name": "short" })).await;
    let early = on_b
        .next_matching(|e| e.event == "AGENT_CARD_UPDATED", Duration::ZERO)
        .await
        .expect("open");
    assert!(early.is_none(), "nothing reached B yet: {early:?}");

    sqlx::raw_sql("DROP TRIGGER molecule_t_refuse ON bus_messages")
        .execute(&mut db)
        .await
        .expect("drop the trigger");
    let mut names = Vec::new();
    for _ in 0..2 {
        let e = on_b
            .next_matching(|e| e.event == "AGENT_CARD_UPDATED", Duration::from_secs(10))
            .await
            .expect("open")
            .unwrap_or_else(|| panic!("both cards reach B; got {names:?}"));
        names.push(
            e.payload["agent_card"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    assert_eq!(names, ["long", "short"], "in order, once each");
    let again = on_b
        .next_matching(
            |e| e.event == "AGENT_CARD_UPDATED",
            Duration::from_millis(500),
        )
        .await
        .expect("open");
    assert!(again.is_none(), "no duplicate: {again:?}");
    shutdown_all([a, b, c]).await;
}

#[tokio::test]
async fn a_token_revoked_on_one_replica_is_refused_by_the_others_at_once() {
    let Some([a, b, c]) = three(|_| {}).await else {
        return;
    };
    let ws = create(&a, "w").await;
    let old = register(&a, ws).await;
    // B and C know the token (cached on first use).
    assert_eq!(beat(&b, ws, &old, 0.0).await, 200);
    assert_eq!(beat(&c, ws, &old, 0.0).await, 200);
    let (s, rotated) = call(
        &client(&a),
        Method::POST,
        &format!("/admin/workspaces/{ws}/token"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{rotated}");
    let new = rotated["auth_token"].as_str().expect("a new token");
    // The answer on A came after every replica was told: no window.
    assert_eq!(
        beat(&b, ws, &old, 0.0).await,
        401,
        "B refuses the old token"
    );
    assert_eq!(
        beat(&c, ws, &old, 0.0).await,
        401,
        "C refuses the old token"
    );
    assert_eq!(beat(&c, ws, new, 0.0).await, 200, "the new one works on C");
    shutdown_all([a, b, c]).await;
}

/// TTL of the liveness test: each replica sees a given workspace's beat
/// every third second, longer than this, so a replica judging by its own
/// deadlines alone would call it dead (and a beat a second leaves 1.5 s of
/// slack for a loaded machine).
const SHORT_TTL: Duration = Duration::from_millis(2500);

/// Replicas that judge liveness with [`SHORT_TTL`], checking often.
fn short_ttl(c: &mut molecule_server::config::Config) {
    c.liveness_ttl = SHORT_TTL;
    c.liveness_check_every = Duration::from_millis(100);
}

#[tokio::test]
async fn heartbeats_round_robined_across_replicas_keep_workspaces_online() {
    let Some([a, b, c]) = three(short_ttl).await else {
        return;
    };
    let replicas = [&a, &b, &c];
    let mut fleet = Vec::new();
    for i in 0..20 {
        let ws = create(replicas[i % 3], &format!("w{i}")).await;
        let token = register(replicas[i % 3], ws).await;
        fleet.push((ws, token));
    }
    let mut watch = client(&a).subscribe().await.expect("/ws on A");
    // Two minutes of beats, one a second, each to the next replica.
    let rounds = 120;
    for round in 0..rounds {
        let next = tokio::time::Instant::now() + Duration::from_secs(1);
        for (i, (ws, token)) in fleet.iter().enumerate() {
            assert_eq!(beat(replicas[(round + i) % 3], *ws, token, 0.0).await, 200);
        }
        tokio::time::sleep_until(next).await;
    }
    let flap = watch
        .next_matching(|e| e.event == "WORKSPACE_OFFLINE", Duration::ZERO)
        .await
        .expect("open");
    assert!(flap.is_none(), "no workspace went offline: {flap:?}");
    for (ws, _) in &fleet {
        let w = client(&c).get_workspace(*ws).await.expect("get");
        assert_eq!(w.status.as_str(), "online", "{ws}");
    }
    // Silence: the replicas still judge, and every workspace goes offline.
    let silent = Instant::now();
    let mut alive: std::collections::HashSet<String> =
        fleet.iter().map(|(ws, _)| ws.to_string()).collect();
    while !alive.is_empty() {
        let e = watch
            .next_matching(|e| e.event == "WORKSPACE_OFFLINE", Duration::from_secs(10))
            .await
            .expect("open")
            .unwrap_or_else(|| panic!("still not offline: {alive:?}"));
        alive.remove(&e.workspace_id);
    }
    println!("20 silent workspaces offline after {:?}", silent.elapsed());
    shutdown_all([a, b, c]).await;
}

/// A workspace registered and heard only on replica A is still judged
/// when A goes away: B learnt of it from A's note and goes by the shared
/// `last_heartbeat_at` — online while beats land on C, offline once they
/// stop. (Before, only a replica that had heard a heartbeat judged it:
/// with A gone the silent workspace stayed online.)
#[tokio::test]
async fn a_workspace_heard_only_by_a_departed_replica_is_still_judged() {
    let Some([a, b, c]) = three(short_ttl).await else {
        return;
    };
    let ws = create(&a, "heard-on-a").await;
    let token = register(&a, ws).await;
    assert_eq!(beat(&a, ws, &token, 0.0).await, 200);
    let mut watch = client(&b).subscribe().await.expect("/ws on B");
    a.shutdown().await.unwrap();
    // Beats on C for three TTLs: B, which never heard one, keeps it online.
    let until = Instant::now() + SHORT_TTL * 3;
    while Instant::now() < until {
        assert_eq!(beat(&c, ws, &token, 0.0).await, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let flap = watch
        .next_matching(|e| e.event == "WORKSPACE_OFFLINE", Duration::ZERO)
        .await
        .expect("open");
    assert!(flap.is_none(), "offline while beating on C: {flap:?}");
    c.shutdown().await.unwrap();
    // Silence, with only B left: B judges it.
    let silent = Instant::now();
    let ws_id = ws.to_string();
    watch
        .next_matching(
            |e| e.event == "WORKSPACE_OFFLINE" && e.workspace_id == ws_id,
            SHORT_TTL * 4,
        )
        .await
        .expect("open")
        .expect("the silent workspace goes offline on B");
    println!("offline on B {:?} after the last beat", silent.elapsed());
    b.shutdown().await.unwrap();
}

/// A replica cut off from the database cannot judge and misses the notes
/// sent meanwhile; once it is back it judges every live workspace all the
/// same. V, heard by B before the cut, falls silent while B is cut off:
/// its judgement fails and is retried, not dropped. W is created on C
/// while B is cut off (B misses its `workspace` note): B judges it after
/// its listener's gap. With A and C gone, B takes both offline.
#[tokio::test]
async fn a_replica_cut_off_from_the_database_judges_what_it_missed() {
    let Some(([a, b, c], relay)) = three_one_cut_off(short_ttl).await else {
        return;
    };
    let mut watch = client(&b).subscribe().await.expect("/ws on B");
    let v = create(&a, "heard-before-the-cut").await;
    let token = register(&a, v).await;
    assert_eq!(beat(&a, v, &token, 0.0).await, 200);
    // A's note about V precedes this event: B has it.
    await_event(&mut watch, v, "WORKSPACE_ONLINE").await;

    relay.cut();
    a.shutdown().await.unwrap();
    let w = create(&c, "created-during-the-cut").await;
    let token = register(&c, w).await;
    assert_eq!(beat(&c, w, &token, 0.0).await, 200);
    c.shutdown().await.unwrap();
    // V's deadline passes on B while B cannot read its row.
    let failing = || {
        b.server.app.tasks().snapshot()["liveness"]
            .last_error
            .is_some()
    };
    eventually(Duration::from_secs(15), || async {
        failing().then_some(())
    })
    .await
    .expect("B cannot judge V while cut off");
    assert!(relay.refused() > 0, "B tried to reach the database");

    relay.restore();
    let back = Instant::now();
    let (v, w) = (v.to_string(), w.to_string());
    let mut silent = std::collections::HashSet::from([v.clone(), w.clone()]);
    while !silent.is_empty() {
        let e = watch
            .next_matching(
                |e| e.event == "WORKSPACE_OFFLINE" && silent.contains(&e.workspace_id),
                SHORT_TTL * 6,
            )
            .await
            .expect("open")
            .unwrap_or_else(|| panic!("B judged {silent:?} (V {v}, W {w})"));
        silent.remove(&e.workspace_id);
    }
    println!("both offline on B {:?} after it was back", back.elapsed());
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_schedule_due_once_fires_once_across_three_replicas() {
    let Some([a, b, c]) = three(|_| {}).await else {
        return;
    };
    let ws = create(&a, "w").await;
    let token = register(&a, ws).await;
    let agent = client(&b)
        .with_workspace_id(Some(ws))
        .with_token(Some(token));
    let id = crate::schedules::yearly(&agent, ws, "report").await;
    let store = crate::store_of(&a.server).await;
    crate::schedules::make_due(&*store, ws, id, chrono::Duration::minutes(1)).await;
    eventually(Duration::from_secs(10), || async {
        let r = crate::schedules::get(&agent, ws, id).await;
        (r["run_count"] == 1).then_some(())
    })
    .await
    .expect("the due schedule fires");
    for r in [&a, &b, &c] {
        crate::ticks(&r.server.app, "scheduler", 2).await;
    }
    assert_eq!(crate::schedules::get(&agent, ws, id).await["run_count"], 1);
    let history = eventually(Duration::from_secs(5), || async {
        let h = crate::schedules::history(&agent, ws, id).await;
        (!h.is_empty()).then_some(h)
    })
    .await
    .expect("a history row");
    assert_eq!(
        history.len(),
        1,
        "one run across three replicas: {history:?}"
    );
    shutdown_all([a, b, c]).await;
}

#[tokio::test]
async fn replicas_know_each_other_and_forget_one_that_leaves() {
    let Some([a, b, c]) = three(|_| {}).await else {
        return;
    };
    let view = |r: &Replica| {
        let c = client(r);
        async move {
            let (s, v) = call(&c, Method::GET, "/admin/liveness", None).await;
            assert_eq!(s, 200, "{v}");
            v["replica"].clone()
        }
    };
    let id = |v: &serde_json::Value| v["id"].as_str().expect("an id").to_string();
    let peers = |v: &serde_json::Value| {
        let mut p: Vec<String> = v["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        p.sort();
        p
    };
    let (ia, ib, ic) = (
        id(&view(&a).await),
        id(&view(&b).await),
        id(&view(&c).await),
    );
    let others = |me: &str| {
        let mut o: Vec<String> = [&ia, &ib, &ic]
            .into_iter()
            .filter(|i| i.as_str() != me)
            .cloned()
            .collect();
        o.sort();
        o
    };
    // Each hears the two others (hello at start, answered by the others).
    eventually(Duration::from_secs(10), || async {
        for r in [&a, &b, &c] {
            let v = view(r).await;
            if peers(&v) != others(&id(&v)) {
                return None;
            }
        }
        Some(())
    })
    .await
    .expect("every replica lists the two others");
    // One leaves in order (bye): the others stop counting on it at once.
    c.shutdown().await.unwrap();
    eventually(Duration::from_secs(5), || async {
        let (va, vb) = (view(&a).await, view(&b).await);
        (peers(&va) == [ib.clone()] && peers(&vb) == [ia.clone()]).then_some(())
    })
    .await
    .expect("the one that left is no longer a peer");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// The database's host vanishes for replica B (a failover, a dropped
/// route): its sessions end on the server, but its connections stay open
/// and silent, so a listener that only reads would wait for ever and B
/// would never hear another replica. After 15 s of silence the listener
/// checks its connection, finds it dead, listens again and catches up: W,
/// created on C meanwhile, is judged on B once A and C are gone.
#[tokio::test]
async fn a_replica_whose_database_vanished_notices_and_catches_up() {
    let Some(([a, b, c], relay)) = three_one_cut_off(short_ttl).await else {
        return;
    };
    let mut watch = client(&b).subscribe().await.expect("/ws on B");
    relay.vanish();
    let w = create(&c, "created-while-b-heard-nothing").await;
    let token = register(&c, w).await;
    assert_eq!(beat(&c, w, &token, 0.0).await, 200);
    // The database is reachable again; B's old connections are dead and
    // silent (closed only when B sends on them).
    relay.restore();
    let back = Instant::now();
    a.shutdown().await.unwrap();
    c.shutdown().await.unwrap();
    let w_id = w.to_string();
    watch
        .next_matching(
            |e| e.event == "WORKSPACE_OFFLINE" && e.workspace_id == w_id,
            Duration::from_secs(45),
        )
        .await
        .expect("open")
        .expect("B judges W once its listener found its connection dead");
    println!(
        "W offline on B {:?} after the database was back",
        back.elapsed()
    );
    b.shutdown().await.unwrap();
}

/// A database restart or a network cut kills every pooled connection at
/// once. The bus listener sees it first; the connections released before
/// are pinged before their next use, so the requests after it come back
/// find live ones. (Pinging only connections idle for 5 s failed one
/// request per dead connection: four 500s in a row here.)
#[tokio::test]
async fn requests_after_a_database_connection_cut_do_not_fail() {
    let (database, _dir) = fresh_database().await;
    if matches!(database, Database::Sqlite(_)) {
        return;
    }
    let (b, relay) = start_cut_off(&database, |_| {}).await;
    let c = client(&b);
    // Several connections in the pool, all used within the last 5 s.
    let busy: Vec<_> = (0..8)
        .map(|_| call(&c, Method::GET, "/workspaces", None))
        .collect();
    for (s, v) in futures_util::future::join_all(busy).await {
        assert_eq!(s, 200, "{v}");
    }
    relay.cut();
    eventually(Duration::from_secs(10), || async {
        (relay.refused() > 0).then_some(())
    })
    .await
    .expect("the listener tries to listen again");
    relay.restore();
    for i in 0..20 {
        let (s, v) = call(&c, Method::GET, "/workspaces", None).await;
        assert_eq!(s, 200, "request {i} after the cut: {v}");
    }
    b.shutdown().await.unwrap();
}

/// One replica on a fresh PostgreSQL database and a connection of the
/// test's own to it (to play another replica by hand); `None` on SQLite.
async fn one_replica_and_its_database()
-> Option<(Option<crate::TempDir>, Replica, sqlx::PgConnection)> {
    use sqlx::Connection;
    let (database, dir) = fresh_database().await;
    let Database::Postgres(url) = database.clone() else {
        return None;
    };
    let replica = start_on(database, |_| {}).await;
    let db = sqlx::PgConnection::connect(&url).await.expect("connect");
    Some((dir, replica, db))
}

/// `payload` sent `times` over on the replicas' bus channel, in one
/// statement, as another replica's notification.
async fn send_on_the_bus(db: &mut sqlx::PgConnection, payload: &str, times: i32) {
    sqlx::query("SELECT pg_notify('molecule_bus', $1) FROM generate_series(1, $2)")
        .bind(payload)
        .bind(times)
        .execute(db)
        .await
        .expect("notify");
}

/// Notes can be lost without the listener losing its connection: another
/// replica's outgoing queue overflowed (it then sends `lost`), a note this
/// replica cannot read (a newer replica's), a long note whose row is gone.
/// Each time the replica catches up as after a gap of its own: it drops every cache (a token deleted
/// behind its back is refused from then on) and every live subscriber,
/// operator or workspace, gets a `RESYNC` frame. The notes are sent here
/// by hand with `pg_notify`, as another replica would.
#[tokio::test]
async fn notes_lost_on_the_bus_make_a_replica_catch_up() {
    let (_dir, b, mut db) = match one_replica_and_its_database().await {
        Some(set) => set,
        None => return,
    };
    let peer = Uuid::new_v4();
    // Notifications carry `=` and the note, or `#` and the id of a row
    // holding a long one.
    let cases = [
        (
            format!("={}", json!({ "from": peer, "kind": "from_the_future" })),
            "a note was not understood",
        ),
        (
            format!("={}", json!({ "from": peer, "kind": "lost" })),
            "another replica dropped notes",
        ),
        (
            "#0".to_string(),
            "this replica missed notes from the others",
        ),
    ];
    for (note, reason) in cases {
        let ws = create(&b, "w").await;
        let token = register(&b, ws).await;
        assert_eq!(beat(&b, ws, &token, 0.0).await, 200);
        let mut operator = client(&b).subscribe().await.expect("/ws as operator");
        let mut agent = client(&b)
            .with_workspace_id(Some(ws))
            .with_token(Some(token.clone()))
            .subscribe()
            .await
            .expect("/ws as the workspace");
        // Replaced behind B's back (revoked, and another one live): B
        // still has the old one cached.
        for sql in [
            "UPDATE workspace_auth_tokens SET revoked_at = now() WHERE workspace_id = $1",
            "INSERT INTO workspace_auth_tokens (workspace_id, token_hash, prefix) \
             VALUES ($1, decode(md5(random()::text), 'hex'), 'other')",
        ] {
            sqlx::query(sql)
                .bind(ws)
                .execute(&mut db)
                .await
                .expect("replace the token");
        }
        assert_eq!(beat(&b, ws, &token, 0.0).await, 200, "cached on B");

        send_on_the_bus(&mut db, &note, 1).await;
        for (who, stream) in [("operator", &mut operator), ("workspace", &mut agent)] {
            let e = stream
                .next_matching(|e| e.event == "RESYNC", Duration::from_secs(10))
                .await
                .expect("open")
                .unwrap_or_else(|| panic!("the {who} is told to resync after {note:?}"));
            assert_eq!(e.payload["reason"], reason, "{e:?}");
        }
        assert_eq!(
            beat(&b, ws, &token, 0.0).await,
            401,
            "the cache was dropped after {note:?}"
        );
    }

    // A rolling upgrade: a newer replica's notes, one every 100 ms for 2 s
    // and a burst of a hundred. The subscribers are told, but not every
    // time: catch-ups are at least a second apart, each covering every
    // loss counted before it (one per note would be 120 frames).
    let mut operator = client(&b).subscribe().await.expect("/ws as operator");
    let note = format!("={}", json!({ "from": peer, "kind": "from_the_future" }));
    for _ in 0..20 {
        send_on_the_bus(&mut db, &note, 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send_on_the_bus(&mut db, &note, 100).await;
    let mut frames = 0;
    while operator
        .next_matching(|e| e.event == "RESYNC", Duration::from_secs(3))
        .await
        .expect("open")
        .is_some()
    {
        frames += 1;
    }
    // 2 s of notes: at most one at 0, 1 and 2 s, and one after the burst.
    assert!(
        (1..=4).contains(&frames),
        "{frames} RESYNC frames for 120 notes in 2 s"
    );
    b.shutdown().await.unwrap();
}

/// A heartbeat that lands on a replica whose cache still holds the old
/// status (another replica's note about the change is on its way) is
/// judged against that old status: "online, healthy, no change". When the
/// note arrives, the heartbeat, taken after the change, is judged again.
/// Here the other replica is played by hand: it degrades W in the database
/// and its note is sent after B took a healthy heartbeat. Before, W stayed
/// degraded until its next heartbeat (30 s later for a real agent).
#[tokio::test]
async fn a_heartbeat_judged_against_a_stale_status_is_judged_again() {
    let (_dir, b, mut db) = match one_replica_and_its_database().await {
        Some(set) => set,
        None => return,
    };
    let ws = create(&b, "w").await;
    let token = register(&b, ws).await;
    assert_eq!(beat(&b, ws, &token, 0.0).await, 200);
    let mut watch = client(&b).subscribe().await.expect("/ws on B");

    // "Replica A" degrades W; its note is late.
    let changed_at = chrono::Utc::now();
    sqlx::query("UPDATE workspaces SET status = 'degraded' WHERE id = $1")
        .bind(ws)
        .execute(&mut db)
        .await
        .expect("degrade W");
    // B, still caching `online`, takes a healthy heartbeat: no change.
    assert_eq!(beat(&b, ws, &token, 0.0).await, 200);
    let status = || async {
        let (s, v) = call(&client(&b), Method::GET, &format!("/workspaces/{ws}"), None).await;
        assert_eq!(s, 200, "{v}");
        v["status"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(status().await, "degraded", "B judged the beat as `online`");

    let note =
        json!({ "from": Uuid::new_v4(), "kind": "workspace", "id": ws, "status_at": changed_at });
    send_on_the_bus(&mut db, &format!("={note}"), 1).await;
    await_event(&mut watch, ws, "WORKSPACE_ONLINE").await;
    assert_eq!(status().await, "online");
    b.shutdown().await.unwrap();
}
