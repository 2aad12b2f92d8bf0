//! The registry's writes: registration upsert, heartbeat batches, agent
//! card updates and the stale-external sweep query.

use crate::{at, insert, new_ws, stores};
use molecule_store::{HeartbeatWrite, RegisterOutcome, WorkspaceStatus as S};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn register_inserts_an_unknown_workspace() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let id = Uuid::new_v4();
        let card = json!({"name": "agent", "skills": [{"id": "s1"}], "n": 1.5});
        let outcome = s
            .workspace_register(id, "http://10.0.0.9:8000", &card, at(5))
            .await
            .unwrap();
        assert_eq!(outcome, RegisterOutcome::Inserted);

        let row = s.workspace_get(id).await.unwrap().unwrap();
        assert_eq!(row.name, id.to_string());
        assert_eq!(row.status, S::Online);
        assert_eq!(row.url.as_deref(), Some("http://10.0.0.9:8000"));
        assert_eq!(row.agent_card, Some(card));
        assert_eq!(row.last_heartbeat_at, Some(at(5)));
        assert_eq!((row.created_at, row.updated_at), (at(5), at(5)));
        assert_eq!(row.awareness_namespace, None);
        assert_eq!((row.runtime.as_str(), row.tier), ("langgraph", 1));
        assert_eq!(row.workspace_access, "none");
        assert_eq!(row.parent_id, None);
        // No canvas layout row: position defaults.
        assert_eq!((row.x, row.y, row.collapsed), (0.0, 0.0, false));
        b.finish().await;
    }
}

#[tokio::test]
async fn register_updates_an_existing_workspace() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let mut ws = new_ws("remote", None, at(0));
        ws.url = Some("http://10.0.0.5:8000".into());
        let id = insert(s, ws).await;
        assert!(
            s.workspace_transition(id, molecule_types::Transition::FAIL, Some("crashed"), at(1))
                .await
                .unwrap()
        );

        let card = json!({"name": "v2"});
        let outcome = s
            .workspace_register(id, "http://10.0.0.6:9000", &card, at(2))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            RegisterOutcome::Updated {
                previous: S::Failed
            }
        );
        let row = s.workspace_get(id).await.unwrap().unwrap();
        assert_eq!(row.status, S::Online);
        assert_eq!(row.status_reason, None);
        assert_eq!(row.url.as_deref(), Some("http://10.0.0.6:9000"));
        assert_eq!(row.agent_card, Some(card));
        assert_eq!(row.last_heartbeat_at, Some(at(2)));
        assert_eq!(row.updated_at, at(2));
        assert_eq!(row.name, "remote", "the name is not touched");

        // A platform-assigned local url survives what the agent reports.
        let mut local = new_ws("local", None, at(3));
        local.url = Some("http://127.0.0.1:40001".into());
        local.status = S::Online;
        let local = insert(s, local).await;
        let outcome = s
            .workspace_register(local, "http://ws-abc:8000", &json!({}), at(4))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            RegisterOutcome::Updated {
                previous: S::Online
            }
        );
        let row = s.workspace_get(local).await.unwrap().unwrap();
        assert_eq!(row.url.as_deref(), Some("http://127.0.0.1:40001"));
        assert_eq!(row.agent_card, Some(json!({})));
        b.finish().await;
    }
}

#[tokio::test]
async fn register_leaves_removed_rows_alone() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let mut ws = new_ws("gone", None, at(0));
        ws.status = S::Removed;
        ws.url = Some("http://old".into());
        let id = insert(s, ws).await;
        let outcome = s
            .workspace_register(id, "http://new", &json!({"a": 1}), at(9))
            .await
            .unwrap();
        assert_eq!(outcome, RegisterOutcome::SkippedRemoved);
        let row = s.workspace_get(id).await.unwrap().unwrap();
        assert_eq!(row.status, S::Removed);
        assert_eq!(row.url.as_deref(), Some("http://old"));
        assert_eq!((row.agent_card, row.last_heartbeat_at), (None, None));
        assert_eq!(row.updated_at, at(0));
        b.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_insert_exactly_once() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let id = Uuid::new_v4();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let store = b.store.clone();
            tasks.spawn(async move {
                let url = format!("http://10.0.0.{i}:8000");
                store
                    .workspace_register(id, &url, &json!({"i": i}), at(i64::from(i)))
                    .await
            });
        }
        let mut inserted = 0;
        while let Some(outcome) = tasks.join_next().await {
            match outcome.expect("task").expect("register") {
                RegisterOutcome::Inserted => inserted += 1,
                RegisterOutcome::Updated { previous } => assert_eq!(previous, S::Online),
                RegisterOutcome::SkippedRemoved => panic!("nothing was removed"),
            }
        }
        assert_eq!(inserted, 1);
        assert_eq!(b.store.workspace_list().await.unwrap().len(), 1);
        b.finish().await;
    }
}

fn beat(id: Uuid, n: i32, secs: i64) -> HeartbeatWrite {
    HeartbeatWrite {
        id,
        error_rate: f64::from(n) / 10.0,
        sample_error: format!("error {n}"),
        active_tasks: n,
        uptime_seconds: n * 100,
        current_task: format!("task {n}"),
        at: at(secs),
    }
}

#[tokio::test]
async fn heartbeat_batch_writes_live_rows_and_skips_removed() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let one = insert(s, new_ws("one", None, at(0))).await;
        let two = insert(s, new_ws("two", None, at(0))).await;
        let mut gone = new_ws("gone", None, at(0));
        gone.status = S::Removed;
        let gone = insert(s, gone).await;

        let batch = [
            beat(one, 1, 10),
            beat(two, 2, 11),
            beat(gone, 3, 12),
            beat(Uuid::new_v4(), 4, 13),
            // A later beat for the same id in one batch wins.
            beat(one, 5, 14),
        ];
        s.workspace_heartbeat_many(&batch).await.unwrap();

        let row = s.workspace_get(one).await.unwrap().unwrap();
        assert_eq!(row.last_error_rate, 0.5);
        assert_eq!(row.last_sample_error.as_deref(), Some("error 5"));
        assert_eq!((row.active_tasks, row.uptime_seconds), (5, 500));
        assert_eq!(row.current_task.as_deref(), Some("task 5"));
        assert_eq!(
            (row.last_heartbeat_at, row.updated_at),
            (Some(at(14)), at(14))
        );
        assert_eq!(
            row.status,
            S::Provisioning,
            "heartbeats do not change status"
        );

        let row = s.workspace_get(two).await.unwrap().unwrap();
        assert_eq!((row.active_tasks, row.last_heartbeat_at), (2, Some(at(11))));

        let row = s.workspace_get(gone).await.unwrap().unwrap();
        assert_eq!((row.active_tasks, row.last_heartbeat_at), (0, None));
        assert_eq!(row.updated_at, at(0));

        s.workspace_heartbeat_many(&[]).await.unwrap();
        // A big batch goes through in one call.
        let big: Vec<_> = (0..500)
            .map(|i| beat(if i % 2 == 0 { one } else { two }, i, 100 + i64::from(i)))
            .collect();
        s.workspace_heartbeat_many(&big).await.unwrap();
        assert_eq!(
            s.workspace_get(one).await.unwrap().unwrap().active_tasks,
            498
        );
        assert_eq!(
            s.workspace_get(two).await.unwrap().unwrap().active_tasks,
            499
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn the_conformance_result_is_kept_on_live_rows_only() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let live = insert(s, new_ws("live", None, at(0))).await;
        let mut gone = new_ws("gone", None, at(0));
        gone.status = S::Removed;
        let gone = insert(s, gone).await;
        assert_eq!(
            s.workspace_get(live)
                .await
                .unwrap()
                .unwrap()
                .a2a_conformance,
            None
        );
        let result = json!({"passed": false, "failed": [{"check": "card", "detail": "404"}]});
        assert!(s.workspace_set_conformance(live, &result).await.unwrap());
        let row = s.workspace_get(live).await.unwrap().unwrap();
        assert_eq!(row.a2a_conformance, Some(result.clone()));
        assert_eq!(
            row.updated_at,
            at(0),
            "a probe result is not an update of the workspace"
        );
        assert!(!s.workspace_set_conformance(gone, &result).await.unwrap());
        assert!(
            !s.workspace_set_conformance(Uuid::new_v4(), &result)
                .await
                .unwrap()
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn update_card_touches_only_live_rows() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let live = insert(s, new_ws("live", None, at(0))).await;
        let mut gone = new_ws("gone", None, at(0));
        gone.status = S::Removed;
        let gone = insert(s, gone).await;
        let card = json!({"name": "card", "nested": {"list": [1, 2, 3], "null": null}});

        assert!(s.workspace_update_card(live, &card, at(3)).await.unwrap());
        let row = s.workspace_get(live).await.unwrap().unwrap();
        assert_eq!(
            (row.agent_card, row.updated_at),
            (Some(card.clone()), at(3))
        );
        assert!(!s.workspace_update_card(gone, &card, at(3)).await.unwrap());
        assert_eq!(
            s.workspace_get(gone).await.unwrap().unwrap().agent_card,
            None
        );
        assert!(
            !s.workspace_update_card(Uuid::new_v4(), &card, at(3))
                .await
                .unwrap()
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn set_url_touches_only_live_rows() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let live = insert(s, new_ws("live", None, at(0))).await;
        let mut gone = new_ws("gone", None, at(0));
        gone.status = S::Removed;
        let gone = insert(s, gone).await;
        assert!(
            s.workspace_set_url(live, "http://127.0.0.1:4000", at(2))
                .await
                .unwrap()
        );
        let row = s.workspace_get(live).await.unwrap().unwrap();
        assert_eq!(
            (row.url.as_deref(), row.updated_at),
            (Some("http://127.0.0.1:4000"), at(2))
        );
        assert!(s.workspace_set_url(live, "", at(3)).await.unwrap());
        assert_eq!(
            s.workspace_get(live).await.unwrap().unwrap().url.as_deref(),
            Some("")
        );
        assert!(!s.workspace_set_url(gone, "http://x", at(3)).await.unwrap());
        assert!(
            !s.workspace_set_url(Uuid::new_v4(), "http://x", at(3))
                .await
                .unwrap()
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn stale_external_uses_last_heartbeat_or_updated_at() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let make = |name: &str, runtime: &str, status: S, created: i64| {
            let mut ws = new_ws(name, None, at(created));
            ws.runtime = runtime.into();
            ws.status = status;
            ws
        };
        let stale_beat = insert(s, make("stale-beat", "external", S::Online, 0)).await;
        let fresh_beat = insert(s, make("fresh-beat", "external", S::Online, 1)).await;
        // No heartbeat ever: updated_at decides.
        let never_old = insert(s, make("never-old", "external", S::Degraded, 2)).await;
        insert(s, make("never-new", "external", S::Online, 200)).await;
        insert(s, make("offline", "external", S::Offline, 3)).await;
        insert(s, make("local", "langgraph", S::Online, 4)).await;
        s.workspace_heartbeat_many(&[beat(stale_beat, 1, 50), beat(fresh_beat, 1, 150)])
            .await
            .unwrap();

        let ids: Vec<Uuid> = s
            .workspace_list_stale_external(at(100))
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![stale_beat, never_old]);
        // Strictly older than `before`.
        let ids: Vec<Uuid> = s
            .workspace_list_stale_external(at(50))
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![never_old]);
        b.finish().await;
    }
}
