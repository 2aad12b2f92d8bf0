//! Schedules: claiming under concurrent claimers (two store handles on one
//! database), bookkeeping, the in-flight marker, due lists and cron history.

use crate::{at, insert, new_ws, stores};
use molecule_store::{
    ActivityType, NewActivity, NewSchedule, RunStatus, SchedulePatch, ScheduleRunResult, StoreError,
};
use serde_json::json;
use uuid::Uuid;

fn schedule(ws: Uuid, name: &str, next: Option<chrono::DateTime<chrono::Utc>>) -> NewSchedule {
    NewSchedule {
        id: Uuid::new_v4(),
        workspace_id: ws,
        name: name.into(),
        cron_expr: "*/5 * * * *".into(),
        timezone: "UTC".into(),
        prompt: "report".into(),
        enabled: true,
        next_run_at: next,
        source: "runtime".into(),
        now: at(0),
    }
}

#[tokio::test]
async fn schedule_claim_is_won_by_exactly_one_of_many_concurrent_claimers() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let ws = insert(&*b.store, new_ws("ws", None, at(0))).await;
        let s = schedule(ws, "", Some(at(10)));
        b.store.schedule_insert(&s).await.unwrap();
        // A second handle on the same database: another replica.
        let other = molecule_store::open(&b.url).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = if i % 2 == 0 {
                b.store.clone()
            } else {
                other.clone()
            };
            let id = s.id;
            tasks.push(tokio::spawn(async move {
                store
                    .schedule_claim(id, at(10), Some(at(310)), at(20))
                    .await
                    .unwrap()
            }));
        }
        let mut won = 0;
        for t in tasks {
            won += t.await.unwrap() as usize;
        }
        assert_eq!(won, 1, "exactly one claimer owns the run");
        let row = b
            .store
            .schedule_get(ws.into(), s.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.next_run_at, Some(at(310)));
        assert_eq!(row.last_run_at, Some(at(20)));
        // A stale read cannot claim again.
        assert!(
            !b.store
                .schedule_claim(s.id, at(10), Some(at(610)), at(21))
                .await
                .unwrap()
        );
        drop(other);
        b.finish().await;
    }
}

#[tokio::test]
async fn schedules_crud_due_list_and_history() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let st = &*b.store;
        let ws = insert(st, new_ws("ws", None, at(0))).await;
        let gone = insert(st, new_ws("gone", None, at(0))).await;
        // Two unnamed schedules coexist; a duplicate name is a conflict.
        let a = schedule(ws, "", Some(at(5)));
        let c = schedule(ws, "", Some(at(50)));
        st.schedule_insert(&a).await.unwrap();
        st.schedule_insert(&c).await.unwrap();
        st.schedule_insert(&schedule(ws, "daily", Some(at(7))))
            .await
            .unwrap();
        let dup = st.schedule_insert(&schedule(ws, "daily", None)).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        st.schedule_insert(&schedule(gone, "x", Some(at(1))))
            .await
            .unwrap();
        st.workspace_remove_many(&[gone], at(2)).await.unwrap();
        assert_eq!(st.schedule_list(ws).await.unwrap().len(), 3);

        // Due: enabled, next_run_at <= now, workspace not removed, oldest first.
        let due = st.schedule_list_due(at(10), 50).await.unwrap();
        assert_eq!(
            due.iter().map(|r| r.next_run_at).collect::<Vec<_>>(),
            [Some(at(5)), Some(at(7))]
        );
        let p = SchedulePatch {
            enabled: Some(false),
            ..Default::default()
        };
        assert!(st.schedule_patch(ws, a.id, &p, at(11)).await.unwrap());
        assert_eq!(st.schedule_list_due(at(10), 50).await.unwrap().len(), 1);
        assert!(
            !st.schedule_claim(a.id, at(5), None, at(12)).await.unwrap(),
            "disabled rows are not claimed"
        );
        // Patching scoped to the workspace; clearing next_run_at.
        assert!(!st.schedule_patch(gone, a.id, &p, at(11)).await.unwrap());
        let clear = SchedulePatch {
            next_run_at: Some(None),
            name: Some("renamed".into()),
            ..Default::default()
        };
        assert!(st.schedule_patch(ws, c.id, &clear, at(12)).await.unwrap());
        let row = st.schedule_get(ws.into(), c.id).await.unwrap().unwrap();
        assert_eq!((row.next_run_at, row.name.as_str()), (None, "renamed"));
        let rename = SchedulePatch {
            name: Some("daily".into()),
            ..Default::default()
        };
        assert!(matches!(
            st.schedule_patch(ws, c.id, &rename, at(13)).await,
            Err(StoreError::Conflict(_))
        ));

        let r = ScheduleRunResult {
            status: RunStatus::Error,
            error: "HTTP 502".into(),
            started_at: at(20),
            at: at(21),
        };
        assert!(st.schedule_record_run(c.id, &r).await.unwrap());
        let row = st.schedule_get(ws.into(), c.id).await.unwrap().unwrap();
        assert_eq!(
            (
                row.run_count,
                row.last_status.map(|s| s.as_str()),
                row.last_error.as_str()
            ),
            (1, Some("error"), "HTTP 502")
        );
        assert_eq!(row.last_run_at, Some(at(20)));

        // History: cron_run rows of that schedule only, newest first.
        let mut rows = Vec::new();
        for (i, sid) in [c.id, a.id, c.id].into_iter().enumerate() {
            let mut act = NewActivity::new(ws, ActivityType::CronRun);
            act.request_body = Some(json!({ "schedule_id": sid, "n": i }));
            act.created_at = at(30 + i as i64);
            rows.push(act);
        }
        let mut other = NewActivity::new(ws, ActivityType::A2aReceive);
        other.request_body = Some(json!({ "schedule_id": c.id }));
        rows.push(other);
        st.activity_insert_many(&rows).await.unwrap();
        let h = st.activity_cron_history(ws, c.id, 20).await.unwrap();
        assert_eq!(
            h.iter()
                .map(|r| r.request_body.as_ref().unwrap()["n"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            [2, 0]
        );
        assert_eq!(
            st.activity_cron_history(ws, c.id, 1).await.unwrap().len(),
            1
        );

        // In-flight marker: one run at a time; a fired run's record clears
        // it, a skip's does not; an abandoned marker can be taken over.
        assert!(st.schedule_begin_run(c.id, at(40), at(0)).await.unwrap());
        assert!(!st.schedule_begin_run(c.id, at(41), at(0)).await.unwrap());
        let skip = ScheduleRunResult {
            status: RunStatus::Skipped,
            error: "in flight".into(),
            started_at: at(41),
            at: at(41),
        };
        assert!(st.schedule_record_skip(c.id, &skip).await.unwrap());
        assert!(
            !st.schedule_begin_run(c.id, at(42), at(0)).await.unwrap(),
            "a skip leaves the marker"
        );
        assert!(st.schedule_record_run(c.id, &r).await.unwrap());
        assert!(
            st.schedule_begin_run(c.id, at(43), at(0)).await.unwrap(),
            "a finished run clears it"
        );
        assert!(
            st.schedule_begin_run(c.id, at(500), at(100)).await.unwrap(),
            "abandoned after the stale limit"
        );
        let row = st.schedule_get(ws.into(), c.id).await.unwrap().unwrap();
        assert_eq!(
            (row.run_count, row.last_status.map(|s| s.as_str())),
            (3, Some("error"))
        );

        assert!(st.schedule_delete(ws.into(), c.id).await.unwrap());
        assert!(!st.schedule_delete(ws.into(), c.id).await.unwrap());
        b.finish().await;
    }
}
