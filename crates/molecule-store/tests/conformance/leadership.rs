//! Leadership of singleton background tasks among processes on one
//! database (`Store::lead`). Each store opened below stands for one
//! platform process.

use crate::stores;
use std::time::Duration;

#[tokio::test]
async fn one_process_leads_a_task_until_it_ends_then_another_takes_over() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let first = &b.store;
        let second = molecule_store::open(&b.url).await.expect("second process");
        assert!(first.lead("scheduler").await.unwrap());
        match b.name {
            // One embedded database, one process: it leads everything (the
            // platform is documented as single-process on SQLite).
            "sqlite" => assert!(second.lead("scheduler").await.unwrap()),
            _ => {
                assert!(!second.lead("scheduler").await.unwrap(), "one leader");
                // The leader keeps it; tasks are led independently.
                assert!(first.lead("scheduler").await.unwrap());
                assert!(second.lead("health-sweep").await.unwrap());
                assert!(!first.lead("health-sweep").await.unwrap());
                // The leader's process ends: its session closes, the lock
                // goes with it, and the next attempt of another wins.
                let third = molecule_store::open(&b.url).await.expect("third process");
                drop(second);
                assert!(
                    takes_lead(third.as_ref(), "health-sweep").await,
                    "the lead passes on when its holder is gone"
                );
                assert!(!first.lead("health-sweep").await.unwrap());
                assert!(first.lead("scheduler").await.unwrap());
            }
        }
        b.finish().await;
    }
}

/// A status write as a task's leader (`workspace_transition_as_leader`)
/// is fenced by the lead: written while this process leads the task, not
/// written (`None`) while another does, and refused once the session that
/// held the lead was ended behind the process's back (a stopped replica
/// that another evicted), though the process still believed it led.
#[tokio::test]
async fn a_write_as_leader_is_fenced_by_the_lead() {
    use crate::{at, insert, new_ws};
    use molecule_store::WorkspaceStatus;
    use molecule_types::Transition as T;
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let first = &b.store;
        let id = insert(first.as_ref(), new_ws("w", None, at(0))).await;
        assert!(
            first
                .workspace_transition(id, T::EXTERNAL_ONLINE, None, at(1))
                .await
                .unwrap()
        );
        let restart = |s: &'static str| (T::GOVERNED_RESTART, Some(s), at(2));
        assert!(first.lead("provisioner").await.unwrap());
        if b.name == "sqlite" {
            let (t, r, now) = restart("sqlite");
            let wrote = first
                .workspace_transition_as_leader("provisioner", id, t, r, now)
                .await
                .unwrap();
            assert_eq!(wrote, Some(true), "one process leads everything");
            b.finish().await;
            continue;
        }
        let second = molecule_store::open(&b.url).await.expect("second process");
        let (t, r, now) = restart("not the leader");
        let wrote = second
            .workspace_transition_as_leader("provisioner", id, t, r, now)
            .await
            .unwrap();
        assert_eq!(wrote, None, "a process that does not lead writes nothing");
        assert_eq!(status_of(first.as_ref(), id).await, WorkspaceStatus::Online);

        // The leader's session is ended by another (as an eviction does).
        let ended = b
            .raw()
            .await
            .count(
                "WITH k AS (SELECT hashtextextended(current_database() || ':provisioner', 0) AS key), \
                 holder AS MATERIALIZED ( \
                   SELECT l.pid FROM k, pg_locks l \
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     AND l.classid = ((k.key >> 32) & 4294967295)::oid \
                     AND l.objid = (k.key & 4294967295)::oid) \
                 SELECT count(*) FROM holder WHERE pg_terminate_backend(pid)",
            )
            .await;
        assert_eq!(ended, 1, "the leader's session was found and ended");
        let (t, r, now) = restart("evicted");
        let wrote = first
            .workspace_transition_as_leader("provisioner", id, t, r, now)
            .await;
        assert!(
            wrote.is_err(),
            "the write on the ended session fails: {wrote:?}"
        );
        assert_eq!(status_of(first.as_ref(), id).await, WorkspaceStatus::Online);
        // It stands by now; the other takes the lead and may write.
        let (t, r, now) = restart("after the eviction");
        assert_eq!(
            first
                .workspace_transition_as_leader("provisioner", id, t, r, now)
                .await
                .unwrap(),
            None
        );
        assert!(
            takes_lead(second.as_ref(), "provisioner").await,
            "the lead is free once its session ended"
        );
        let (t, r, now) = restart("the new governor");
        assert_eq!(
            second
                .workspace_transition_as_leader("provisioner", id, t, r, now)
                .await
                .unwrap(),
            Some(true)
        );
        assert_eq!(
            status_of(first.as_ref(), id).await,
            WorkspaceStatus::Provisioning
        );
        drop(second);
        b.finish().await;
    }
}

async fn status_of(
    s: &dyn molecule_store::Store,
    id: uuid::Uuid,
) -> molecule_store::WorkspaceStatus {
    s.workspace_get(id).await.unwrap().expect("the row").status
}

/// Whether `store` takes the lead of `task` within 5 s (a released lock
/// is free at once; an ended session's, once its backend has exited).
async fn takes_lead(store: &dyn molecule_store::Store, task: &str) -> bool {
    for _ in 0..100 {
        if store.lead(task).await.unwrap() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
