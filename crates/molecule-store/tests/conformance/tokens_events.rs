//! Auth tokens (insert, lookup, liveness) and the structure event log.

use crate::{Raw, at, insert, new_ws, stores};
use molecule_store::NewEvent;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn tokens_lookup_liveness_and_counts() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let ws = insert(s, new_ws("ws", None, at(0))).await;
        let other = insert(s, new_ws("other", None, at(0))).await;
        let hash = [7u8; 32];
        assert!(!s.token_has_live(ws).await.unwrap());
        assert_eq!(s.token_count_live().await.unwrap(), 0);

        s.token_insert(ws, &hash, "mol_abc", at(1)).await.unwrap();
        s.token_insert(ws, &[8u8; 32], "mol_def", at(1))
            .await
            .unwrap();
        assert_eq!(s.token_lookup(&hash, at(2)).await.unwrap(), Some(ws));
        assert_eq!(s.token_lookup(&[9u8; 32], at(2)).await.unwrap(), None);
        assert!(s.token_has_live(ws).await.unwrap());
        assert!(!s.token_has_live(other).await.unwrap());
        assert_eq!(s.token_count_live().await.unwrap(), 2);
        // token_hash is UNIQUE, even across workspaces.
        assert!(
            s.token_insert(other, &hash, "mol_xyz", at(3))
                .await
                .is_err()
        );
        // A token must belong to an existing workspace.
        assert!(
            s.token_insert(Uuid::new_v4(), &[1u8; 32], "mol_no", at(3))
                .await
                .is_err()
        );

        let raw = b.raw().await;
        let used = match &raw {
            Raw::Sqlite(_) => {
                raw.count(
                    "SELECT COUNT(*) FROM workspace_auth_tokens \
                     WHERE last_used_at = '2026-03-01T12:00:02.123456Z'",
                )
                .await
            }
            Raw::Postgres(_) => {
                raw.count(
                    "SELECT COUNT(*) FROM workspace_auth_tokens \
                     WHERE last_used_at = '2026-03-01T12:00:02.123456Z'::timestamptz",
                )
                .await
            }
        };
        assert_eq!(used, 1, "lookup bumps last_used_at of the token it found");

        // Revoked tokens are not found and do not count.
        raw.execute(
            "UPDATE workspace_auth_tokens SET revoked_at = created_at \
             WHERE prefix = 'mol_abc'",
        )
        .await
        .unwrap();
        assert_eq!(s.token_lookup(&hash, at(4)).await.unwrap(), None);
        assert_eq!(s.token_count_live().await.unwrap(), 1);
        assert!(s.token_has_live(ws).await.unwrap());
        b.finish().await;
    }
}

#[tokio::test]
async fn token_replace_revokes_every_live_token_of_that_workspace_only() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let ws = insert(s, new_ws("ws", None, at(0))).await;
        let other = insert(s, new_ws("other", None, at(0))).await;
        s.token_insert(ws, &[1u8; 32], "mol_one", at(1))
            .await
            .unwrap();
        s.token_insert(ws, &[2u8; 32], "mol_two", at(1))
            .await
            .unwrap();
        s.token_insert(other, &[3u8; 32], "mol_oth", at(1))
            .await
            .unwrap();

        s.token_replace(ws, &[4u8; 32], "mol_new", at(2))
            .await
            .unwrap();
        assert_eq!(s.token_lookup(&[1u8; 32], at(3)).await.unwrap(), None);
        assert_eq!(s.token_lookup(&[2u8; 32], at(3)).await.unwrap(), None);
        assert_eq!(s.token_lookup(&[4u8; 32], at(3)).await.unwrap(), Some(ws));
        assert_eq!(
            s.token_lookup(&[3u8; 32], at(3)).await.unwrap(),
            Some(other),
            "another workspace's token is untouched"
        );
        assert_eq!(s.token_count_live().await.unwrap(), 2);
        // A failed insert (hash already used) revokes nothing.
        assert!(
            s.token_replace(ws, &[3u8; 32], "mol_dup", at(4))
                .await
                .is_err()
        );
        assert_eq!(s.token_lookup(&[4u8; 32], at(5)).await.unwrap(), Some(ws));
        b.finish().await;
    }
}

fn event(kind: &str, workspace_id: Option<Uuid>, secs: i64) -> NewEvent {
    NewEvent {
        id: Uuid::new_v4(),
        event_type: kind.to_string(),
        workspace_id,
        payload: json!({"kind": kind, "secs": secs, "list": [true, null]}),
        created_at: at(secs),
    }
}

#[tokio::test]
async fn events_list_newest_first_with_filter_and_limit() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        // Events carry no foreign key: ids need not exist as workspaces.
        let (a, c) = (Uuid::new_v4(), Uuid::new_v4());
        let events = [
            event("WORKSPACE_CREATED", Some(a), 1),
            event("WORKSPACE_ONLINE", Some(a), 3),
            event("WORKSPACE_CREATED", Some(c), 2),
            event("PLATFORM", None, 4),
            event("WORKSPACE_OFFLINE", Some(a), 5),
        ];
        for e in &events {
            s.event_insert(e).await.unwrap();
        }
        let all = s.event_list(None, 100).await.unwrap();
        let secs: Vec<i64> = all
            .iter()
            .map(|e| e.payload["secs"].as_i64().unwrap())
            .collect();
        assert_eq!(secs, vec![5, 4, 3, 2, 1]);
        let platform = &all[1];
        assert_eq!(platform.id, events[3].id);
        assert_eq!(platform.event_type, "PLATFORM");
        assert_eq!(platform.workspace_id, None);
        assert_eq!(platform.payload, events[3].payload);
        assert_eq!(platform.created_at, at(4));

        let for_a = s.event_list(Some(a), 100).await.unwrap();
        let ids: Vec<Uuid> = for_a.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![events[4].id, events[1].id, events[0].id]);
        assert!(for_a.iter().all(|e| e.workspace_id == Some(a)));

        let limited = s.event_list(None, 2).await.unwrap();
        assert_eq!(
            limited.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![events[4].id, events[3].id]
        );
        assert_eq!(s.event_list(Some(a), 1).await.unwrap()[0].id, events[4].id);
        assert!(
            s.event_list(Some(Uuid::new_v4()), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(s.event_list(None, 0).await.unwrap().is_empty());
        b.finish().await;
    }
}
