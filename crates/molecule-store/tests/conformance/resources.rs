//! Secrets, config and key/value memory, scoped memory search (FTS on both
//! backends), approvals.

use crate::{at, insert, new_ws, stores};
use molecule_store::{ApprovalState, MemoryQuery, MemoryRow, MemoryText, NewApproval};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn secrets_store_bytes_with_their_version() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let st = &*b.store;
        let ws = insert(st, new_ws("ws", None, at(0))).await;
        let other = insert(st, new_ws("other", None, at(0))).await;
        let blob: Vec<u8> = (0u8..=255).collect();
        st.secret_set_workspace(ws, "API_KEY", &blob, 1, at(1))
            .await
            .unwrap();
        st.secret_set_workspace(ws, "PLAIN", b"v", 0, at(1))
            .await
            .unwrap();
        st.secret_set_workspace(ws, "API_KEY", b"new", 0, at(2))
            .await
            .unwrap();
        let rows = st.secret_list_workspace(ws).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].key.as_str(),
                rows[0].value.as_slice(),
                rows[0].encryption_version
            ),
            ("API_KEY", &b"new"[..], 0)
        );
        assert_eq!((rows[0].created_at, rows[0].updated_at), (at(1), at(2)));
        st.secret_set_global("API_KEY", &blob, 1, at(3))
            .await
            .unwrap();
        st.secret_set_global("OTHER", b"x", 0, at(3)).await.unwrap();
        let g = st.secret_list_global().await.unwrap();
        assert_eq!(
            (g[0].value.clone(), g[0].encryption_version),
            (blob.clone(), 1)
        );
        assert_eq!(
            st.secret_workspaces_with_key("API_KEY").await.unwrap(),
            [ws]
        );
        assert!(
            st.secret_workspaces_with_key("OTHER")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(st.secret_delete_workspace(ws, "PLAIN").await.unwrap());
        assert!(!st.secret_delete_workspace(other, "API_KEY").await.unwrap());
        assert!(st.secret_delete_global("OTHER").await.unwrap());
        assert!(!st.secret_delete_global("OTHER").await.unwrap());
        b.finish().await;
    }
}

#[tokio::test]
async fn config_merges_shallowly_and_memory_entries_expire() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let st = &*b.store;
        let ws = insert(st, new_ws("ws", None, at(0))).await;
        assert_eq!(st.config_get(ws).await.unwrap(), None);
        let m = |v: serde_json::Value| v.as_object().unwrap().clone();
        st.config_merge(ws, &m(json!({"a": 1, "nested": {"x": 1, "y": 2}})), at(1))
            .await
            .unwrap();
        st.config_merge(ws, &m(json!({"b": 2, "nested": {"x": 9}})), at(2))
            .await
            .unwrap();
        assert_eq!(
            st.config_get(ws).await.unwrap(),
            Some(json!({"a": 1, "b": 2, "nested": {"x": 9}}))
        );

        st.memory_kv_set(ws, "k", &json!({"v": [1, 2]}), None, at(1))
            .await
            .unwrap();
        st.memory_kv_set(ws, "short", &json!("s"), Some(at(10)), at(1))
            .await
            .unwrap();
        assert_eq!(st.memory_kv_list(ws, at(5)).await.unwrap().len(), 2);
        let live = st.memory_kv_list(ws, at(10)).await.unwrap();
        assert_eq!(
            live.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["k"]
        );
        assert_eq!(
            st.memory_kv_get(ws, "k", at(10))
                .await
                .unwrap()
                .unwrap()
                .value,
            json!({"v": [1, 2]})
        );
        assert!(
            st.memory_kv_get(ws, "short", at(11))
                .await
                .unwrap()
                .is_none()
        );
        // Upsert replaces value and expiry.
        st.memory_kv_set(ws, "short", &json!(2), None, at(12))
            .await
            .unwrap();
        assert_eq!(
            st.memory_kv_get(ws, "short", at(100))
                .await
                .unwrap()
                .unwrap()
                .value,
            json!(2)
        );
        assert!(st.memory_kv_delete(ws, "short").await.unwrap());
        assert!(!st.memory_kv_delete(ws, "short").await.unwrap());
        b.finish().await;
    }
}

fn memory(ws: Uuid, content: &str, scope: &str, ns: &str, t: i64) -> MemoryRow {
    MemoryRow {
        id: Uuid::new_v4(),
        workspace_id: ws,
        content: content.into(),
        scope: scope.into(),
        namespace: ns.into(),
        created_at: at(t),
    }
}

#[tokio::test]
async fn memory_search_filters_and_full_text_on_both_backends() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let st = &*b.store;
        let a = insert(st, new_ws("a", None, at(0))).await;
        let c = insert(st, new_ws("c", None, at(0))).await;
        let rows = [
            memory(
                a,
                "The deploy pipelines failed on Tuesday",
                "LOCAL",
                "general",
                1,
            ),
            memory(a, "Pipelines deploy nightly at 02:00", "TEAM", "ops", 2),
            memory(a, "Lunch menu: pasta and salad", "LOCAL", "general", 3),
            memory(c, "deploy pipeline owned by team C", "GLOBAL", "general", 4),
            memory(a, "discount is 50% off_today", "LOCAL", "general", 5),
        ];
        for r in &rows {
            st.memory_insert(r).await.unwrap();
        }
        let search = |scope: Option<&str>,
                      authors: Option<Vec<Uuid>>,
                      ns: Option<&str>,
                      text: MemoryText| MemoryQuery {
            scope: scope.map(String::from),
            authors,
            namespace: ns.map(String::from),
            text,
            limit: 50,
        };
        let ids = |v: Vec<MemoryRow>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
        // Stemmed full text: "pipeline" also finds "Pipelines" (both stemmers agree on plurals).
        let hits = ids(st
            .memory_search(&search(
                None,
                None,
                None,
                MemoryText::FullText("deploy pipeline".into()),
            ))
            .await
            .unwrap());
        let mut want = vec![rows[0].id, rows[1].id, rows[3].id];
        let mut got = hits.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "FTS rows");
        // Author + scope + namespace filters compose with FTS.
        let hits = ids(st
            .memory_search(&search(
                Some("TEAM"),
                Some(vec![a]),
                Some("ops"),
                MemoryText::FullText("pipeline".into()),
            ))
            .await
            .unwrap());
        assert_eq!(hits, [rows[1].id]);
        let hits = ids(st
            .memory_search(&search(None, Some(vec![a]), None, MemoryText::All))
            .await
            .unwrap());
        assert_eq!(
            hits,
            [rows[4].id, rows[2].id, rows[1].id, rows[0].id],
            "newest first"
        );
        let hits = ids(st
            .memory_search(&search(Some("GLOBAL"), None, None, MemoryText::All))
            .await
            .unwrap());
        assert_eq!(hits, [rows[3].id]);
        // Query syntax in user input is text, not operators.
        for q in [
            "\"pipeline",
            "pipeline OR lunch",
            "NEAR(x y)",
            "*",
            "a:b -c",
            "'; DROP TABLE x; --",
        ] {
            let r = st
                .memory_search(&search(None, None, None, MemoryText::FullText(q.into())))
                .await;
            assert!(r.is_ok(), "{q:?}: {r:?}");
        }
        assert!(
            st.memory_search(&search(
                None,
                None,
                None,
                MemoryText::FullText("pipeline OR lunch".into())
            ))
            .await
            .unwrap()
            .iter()
            .all(|m| m.id != rows[2].id)
        );
        // Substring: wildcards are literal, case-insensitive.
        let hits = ids(st
            .memory_search(&search(None, None, None, MemoryText::Substring("%".into())))
            .await
            .unwrap());
        assert_eq!(hits, [rows[4].id]);
        let hits = ids(st
            .memory_search(&search(None, None, None, MemoryText::Substring("_".into())))
            .await
            .unwrap());
        assert_eq!(hits, [rows[4].id]);
        let hits = ids(st
            .memory_search(&search(
                None,
                Some(vec![a]),
                None,
                MemoryText::Substring("L".into()),
            ))
            .await
            .unwrap());
        assert_eq!(
            hits.len(),
            3,
            "lunch, salad, failed, pipelines: case-insensitive 'l'"
        );
        // Delete only own rows.
        assert!(!st.memory_delete(c.into(), rows[0].id).await.unwrap());
        assert!(st.memory_delete(a.into(), rows[0].id).await.unwrap());
        let hits = ids(st
            .memory_search(&search(
                None,
                None,
                None,
                MemoryText::FullText("Tuesday".into()),
            ))
            .await
            .unwrap());
        assert!(!hits.contains(&rows[0].id), "the FTS index follows deletes");
        b.finish().await;
    }
}

#[tokio::test]
async fn approvals_decide_once_and_expire_by_age() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let st = &*b.store;
        let ws = insert(st, new_ws("requester", None, at(0))).await;
        let other = insert(st, new_ws("other", None, at(0))).await;
        let mk = |t: i64, action: &str| NewApproval {
            id: Uuid::new_v4(),
            workspace_id: ws,
            task_id: Some("t1".into()),
            action: action.into(),
            reason: None,
            context: json!({"k": 1}),
            now: at(t),
        };
        let old = mk(0, "deploy");
        let fresh = mk(500, "spend");
        let decided = mk(1, "delete");
        for a in [&old, &fresh, &decided] {
            st.approval_insert(a).await.unwrap();
        }
        assert!(
            !st.approval_decide(
                other.into(),
                decided.id,
                ApprovalState::Approved,
                "human",
                at(2)
            )
            .await
            .unwrap(),
            "scoped to the workspace"
        );
        assert!(
            st.approval_decide(
                ws.into(),
                decided.id,
                ApprovalState::Approved,
                "human",
                at(2)
            )
            .await
            .unwrap()
        );
        assert!(
            !st.approval_decide(ws.into(), decided.id, ApprovalState::Denied, "human", at(3))
                .await
                .unwrap(),
            "only from pending"
        );
        let pending = st.approval_list_pending(50).await.unwrap();
        assert_eq!(
            pending.iter().map(|a| a.id).collect::<Vec<_>>(),
            [old.id, fresh.id]
        );
        assert_eq!(pending[0].workspace_name, "requester");
        // Older than 10 minutes at t=700: only `old`.
        let expired = st.approval_expire(at(100), at(700)).await.unwrap();
        assert_eq!(expired.iter().map(|a| a.id).collect::<Vec<_>>(), [old.id]);
        assert_eq!(
            (expired[0].status.as_str(), expired[0].decided_by.as_deref()),
            ("denied", Some("auto-expired"))
        );
        assert_eq!(expired[0].decided_at, Some(at(700)));
        assert!(
            st.approval_expire(at(100), at(701))
                .await
                .unwrap()
                .is_empty(),
            "idempotent"
        );
        let list = st.approval_list(ws, 50).await.unwrap();
        assert_eq!(
            list.iter().map(|a| a.id).collect::<Vec<_>>(),
            [fresh.id, decided.id, old.id]
        );
        assert_eq!(list[1].context, Some(json!({"k": 1})));
        b.finish().await;
    }
}

#[tokio::test]
async fn agents_keep_one_active_row_per_workspace() {
    use molecule_store::AgentMove;
    use molecule_types::WorkspaceId;
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let st = &*b.store;
        let a = WorkspaceId::new(insert(st, new_ws("a", None, at(0))).await);
        let c = WorkspaceId::new(insert(st, new_ws("c", None, at(0))).await);
        assert_eq!(st.agent_active(a).await.unwrap(), None);
        let first = st.agent_assign(a, "m1", at(1)).await.unwrap().unwrap();
        assert_eq!(
            st.agent_assign(a, "m2", at(1)).await.unwrap(),
            None,
            "one active"
        );
        assert_eq!(st.agent_active(a).await.unwrap(), Some(first.clone()));
        let (old, new) = st.agent_replace(a, "m2", at(2)).await.unwrap().unwrap();
        assert_eq!(
            (old.id, old.model.as_str(), new.model.as_str()),
            (first.id, "m1", "m2")
        );
        assert_eq!(st.agent_active(a).await.unwrap(), Some(new.clone()));
        assert_eq!(st.agent_replace(c, "x", at(2)).await.unwrap(), None);
        let other = st.agent_assign(c, "mc", at(3)).await.unwrap().unwrap();
        assert_eq!(st.agent_move(a, c).await.unwrap(), AgentMove::TargetTaken);
        assert_eq!(st.agent_remove(c, at(4)).await.unwrap(), Some(other));
        assert_eq!(st.agent_remove(c, at(4)).await.unwrap(), None);
        match st.agent_move(a, c).await.unwrap() {
            AgentMove::Moved(row) => assert_eq!((row.id, row.workspace_id), (new.id, c.uuid())),
            other => panic!("{other:?}"),
        }
        assert_eq!(st.agent_move(a, c).await.unwrap(), AgentMove::TargetTaken);
        assert_eq!(st.agent_active(a).await.unwrap(), None);
        let z = WorkspaceId::new(insert(st, new_ws("z", None, at(0))).await);
        assert_eq!(st.agent_move(a, z).await.unwrap(), AgentMove::NoSource);
        // A retired row never blocks a new assignment.
        assert!(st.agent_assign(a, "again", at(5)).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn the_viewport_is_one_row_and_seeds_are_spent_once() {
    use molecule_store::{SeedFiles, Viewport};
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let st = &*b.store;
        assert_eq!(st.viewport_get().await.unwrap(), None);
        let v = Viewport {
            x: 1.5,
            y: -2.0,
            zoom: 0.75,
        };
        st.viewport_put(v, at(1)).await.unwrap();
        let w = Viewport {
            x: 3.0,
            y: 4.0,
            zoom: 2.0,
        };
        st.viewport_put(w, at(2)).await.unwrap();
        assert_eq!(st.viewport_get().await.unwrap(), Some(w));

        let ws = insert(st, new_ws("ws", None, at(0))).await;
        assert_eq!(st.seed_get(ws).await.unwrap(), None);
        let files: SeedFiles = [("config.yaml", "name: x\n"), ("skills/a/SKILL.md", "ü")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        st.seed_put(ws, &files, at(1)).await.unwrap();
        let seed = st.seed_get(ws).await.unwrap().unwrap();
        assert_eq!(
            (seed.files.clone(), seed.created_at),
            (files.clone(), at(1))
        );
        // Replaced meanwhile: clearing the old one leaves the new one.
        let mut newer = files.clone();
        newer.insert("extra.md".into(), "e".into());
        st.seed_put(ws, &newer, at(2)).await.unwrap();
        st.seed_clear(ws, seed.created_at).await.unwrap();
        let kept = st.seed_get(ws).await.unwrap().unwrap();
        assert_eq!(kept.files, newer);
        st.seed_clear(ws, kept.created_at).await.unwrap();
        assert_eq!(st.seed_get(ws).await.unwrap(), None);
    }
}
