//! `activity_logs`: batched inserts, idempotency keys, filters, delegation
//! tracking updates, retention and search.

use crate::{at, insert, new_ws, stores};
use molecule_store::{ActivityQuery, ActivitySource, ActivityType, DelegationUpdate, NewActivity};
use serde_json::json;
use uuid::Uuid;

fn row(ws: Uuid, kind: ActivityType, secs: i64) -> NewActivity {
    let mut r = NewActivity::new(ws, kind);
    r.created_at = at(secs);
    r
}

fn query(ws: Uuid) -> ActivityQuery {
    ActivityQuery {
        workspace_id: ws,
        activity_type: None,
        source: None,
        methods: Vec::new(),
        limit: 100,
    }
}

#[tokio::test]
async fn batches_skip_gone_workspaces_and_duplicate_keys() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let ws = insert(s, new_ws("ws", None, at(0))).await;
        let other = insert(s, new_ws("other", None, at(0))).await;
        let mut rows: Vec<NewActivity> = (0..150)
            .map(|i| row(ws, ActivityType::AgentLog, i))
            .collect();
        rows.push(row(Uuid::new_v4(), ActivityType::AgentLog, 1)); // no such workspace
        let mut keyed = row(ws, ActivityType::Delegation, 2);
        keyed.idempotency_key = Some("k".into());
        rows.push(keyed.clone());
        let mut dup = row(ws, ActivityType::Delegation, 3);
        dup.idempotency_key = Some("k".into());
        rows.push(dup.clone());
        let mut raw = row(other, ActivityType::A2aReceive, 4);
        raw.request_raw = Some(r#"{"jsonrpc":"2.0","id":1}"#.into());
        raw.response_body = Some(json!({"result": {"ok": true}}));
        raw.source_label = Some("system:test".into());
        rows.push(raw);
        assert_eq!(s.activity_insert_many(&rows).await.unwrap(), 152);
        assert_eq!(
            s.activity_list(&query(ws)).await.unwrap().len(),
            100,
            "limit"
        );
        let mut q = query(ws);
        q.limit = 1000;
        assert_eq!(s.activity_list(&q).await.unwrap().len(), 151);
        let o = s.activity_list(&query(other)).await.unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(
            o[0].request_body,
            Some(json!({"jsonrpc": "2.0", "id": 1})),
            "raw text stored as JSON"
        );
        assert_eq!(o[0].response_body, Some(json!({"result": {"ok": true}})));
        assert_eq!(o[0].source_label.as_deref(), Some("system:test"));
        // Single inserts report a taken key.
        let mut again = row(ws, ActivityType::Delegation, 5);
        again.idempotency_key = Some("k".into());
        assert!(!s.activity_insert(&again).await.unwrap());
        let hit = s
            .activity_by_idempotency_key(ws, "k")
            .await
            .unwrap()
            .unwrap();
        assert!(
            hit.id == keyed.id || hit.id == dup.id,
            "one of the two holds the key"
        );
        assert!(s.activity_delete(hit.id).await.unwrap());
        assert!(
            s.activity_insert(&again).await.unwrap(),
            "a deleted key is free"
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn filters_order_and_retention() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let ws = insert(s, new_ws("ws", None, at(0))).await;
        let caller = insert(s, new_ws("caller", None, at(0))).await;
        let mut from_agent = row(ws, ActivityType::A2aReceive, 10);
        from_agent.source_id = Some(caller);
        from_agent.method = Some("message/send".into());
        let mut from_canvas = row(ws, ActivityType::A2aReceive, 20);
        from_canvas.method = Some("message/stream".into());
        let log = row(ws, ActivityType::AgentLog, 30);
        s.activity_insert_many(&[from_agent.clone(), from_canvas.clone(), log.clone()])
            .await
            .unwrap();
        let ids = |rows: Vec<molecule_store::ActivityRow>| {
            rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(s.activity_list(&query(ws)).await.unwrap()),
            [log.id, from_canvas.id, from_agent.id],
            "newest first"
        );
        let mut q = query(ws);
        q.activity_type = Some(ActivityType::A2aReceive);
        q.source = Some(ActivitySource::Canvas);
        assert_eq!(ids(s.activity_list(&q).await.unwrap()), [from_canvas.id]);
        q.source = Some(ActivitySource::Agent);
        assert_eq!(ids(s.activity_list(&q).await.unwrap()), [from_agent.id]);
        let mut q = query(ws);
        q.methods = vec!["message/stream".into(), "other".into()];
        assert_eq!(ids(s.activity_list(&q).await.unwrap()), [from_canvas.id]);

        assert_eq!(s.activity_purge_before(at(25)).await.unwrap(), 2);
        assert_eq!(ids(s.activity_list(&query(ws)).await.unwrap()), [log.id]);
        b.finish().await;
    }
}

#[tokio::test]
async fn retention_deletes_more_rows_than_one_chunk_and_keeps_the_young() {
    // SQLite deletes 5 000 rows per statement; this purge needs three.
    const OLD: usize = 12_001;
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let ws = insert(s, new_ws("ws", None, at(0))).await;
        let old: Vec<_> = (0..OLD)
            .map(|i| row(ws, ActivityType::AgentLog, (i % 20) as i64))
            .collect();
        assert_eq!(s.activity_insert_many(&old).await.unwrap(), OLD as u64);
        let young = [
            row(ws, ActivityType::AgentLog, 30),
            row(ws, ActivityType::Error, 40),
        ];
        s.activity_insert_many(&young).await.unwrap();

        assert_eq!(s.activity_purge_before(at(25)).await.unwrap(), OLD as u64);
        let left: Vec<_> = s
            .activity_list(&query(ws))
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, [young[1].id, young[0].id]);
        assert_eq!(s.activity_purge_before(at(25)).await.unwrap(), 0);
        b.finish().await;
    }
}

#[tokio::test]
async fn delegation_rows_update_by_delegation_id() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let ws = insert(s, new_ws("ws", None, at(0))).await;
        let mut tracking = row(ws, ActivityType::Delegation, 1);
        tracking.method = Some("delegate".into());
        tracking.status = "pending".into();
        tracking.request_body = Some(json!({"task": "t", "delegation_id": "d-1"}));
        s.activity_insert(&tracking).await.unwrap();
        assert!(s.activity_delegation(ws, "d-2").await.unwrap().is_none());
        let found = s.activity_delegation(ws, "d-1").await.unwrap().unwrap();
        assert_eq!(found.id, tracking.id);
        use molecule_types::DelegationStatus as D;
        let upd = |status: D, error: Option<&'static str>, from: &'static [D]| DelegationUpdate {
            workspace_id: ws,
            delegation_id: "d-1",
            status,
            error,
            from,
        };
        assert_eq!(
            s.activity_delegation_update(&upd(D::Completed, None, &[D::Failed]), None)
                .await
                .unwrap(),
            0,
            "guarded"
        );
        assert_eq!(
            s.activity_delegation_update(&upd(D::Dispatched, None, &[D::Pending]), None)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            s.activity_delegation_update(&upd(D::Failed, Some("boom"), &[]), None)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            s.activity_delegation_update(&upd(D::Failed, Some(""), &[]), None)
                .await
                .unwrap(),
            1
        );
        let r = s.activity_delegation(ws, "d-1").await.unwrap().unwrap();
        assert_eq!(r.status, "failed");
        assert_eq!(
            r.error_detail.as_deref(),
            Some("boom"),
            "an empty error keeps the old one"
        );

        // The result row is written with the change, and only with it.
        let result_rows = |id| async move {
            s.activity_list(&ActivityQuery {
                workspace_id: ws,
                activity_type: None,
                source: None,
                methods: Vec::new(),
                limit: 100,
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.id == id)
            .count()
        };
        let lost = row(ws, ActivityType::Delegation, 2);
        assert_eq!(
            s.activity_delegation_update(&upd(D::Completed, None, &[D::Pending]), Some(&lost))
                .await
                .unwrap(),
            0
        );
        assert_eq!(result_rows(lost.id).await, 0, "no change, no result row");
        let won = row(ws, ActivityType::Delegation, 3);
        assert_eq!(
            s.activity_delegation_update(&upd(D::Completed, None, &[D::Failed]), Some(&won))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            result_rows(won.id).await,
            1,
            "the result row comes with the change"
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn open_delegations_are_the_platforms_unfinished_ones_oldest_first() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let ws = insert(s, new_ws("ws", None, at(0))).await;
        let tracking = |id: &str, status: &str, by: Option<&str>, secs: i64| {
            let mut r = row(ws, ActivityType::Delegation, secs);
            r.method = Some("delegate".into());
            r.status = status.into();
            let mut body = json!({"task": "t", "delegation_id": id});
            if let Some(by) = by {
                body["dispatched_by"] = json!(by);
            }
            r.request_body = Some(body);
            r
        };
        let rows = [
            tracking("late", "pending", Some("platform"), 5),
            tracking("early", "dispatched", Some("platform"), 2),
            tracking("done", "completed", Some("platform"), 1),
            tracking("agent", "dispatched", None, 1),
        ];
        for r in &rows {
            assert!(s.activity_insert(r).await.unwrap());
        }
        let mut result = rows[0].clone();
        result.id = Uuid::now_v7();
        result.method = Some("delegate_result".into());
        assert!(s.activity_insert(&result).await.unwrap());

        let open = s.activity_open_delegations(10).await.unwrap();
        let ids: Vec<Uuid> = open.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![rows[1].id, rows[0].id]);
        assert_eq!(s.activity_open_delegations(1).await.unwrap().len(), 1);
        b.finish().await;
    }
}

#[tokio::test]
async fn search_is_a_literal_case_insensitive_substring() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let ws = insert(s, new_ws("ws", None, at(0))).await;
        let mut a = row(ws, ActivityType::AgentLog, 1);
        a.summary = Some("Indexed 100% of FILES".into());
        let mut c = row(ws, ActivityType::AgentLog, 2);
        c.summary = Some("indexed 1000 files".into());
        c.response_body = Some(json!({"text": "under_score"}));
        s.activity_insert_many(&[a.clone(), c.clone()])
            .await
            .unwrap();
        let hits = |q: &'static str| async move {
            s.activity_search(ws, Some(q), 50)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(hits("files").await, [c.id, a.id]);
        assert_eq!(hits("100%").await, [a.id], "% matches itself only");
        assert_eq!(
            hits("0_f").await,
            Vec::<Uuid>::new(),
            "_ matches itself only"
        );
        assert_eq!(hits("under_score").await, [c.id], "bodies are searched");
        assert_eq!(s.activity_search(ws, None, 1).await.unwrap().len(), 1);
        assert!(
            s.memory_search_own(ws, Some("x"), 10)
                .await
                .unwrap()
                .is_empty()
        );
        b.finish().await;
    }
}
