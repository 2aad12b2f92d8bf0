//! Workspace rows: insert/get, listings, hierarchy, patch, descendants,
//! removal and guarded status transitions.

use crate::{at, insert, new_ws, stores};
use molecule_store::{WorkspacePatch, WorkspaceStatus as S};
use uuid::Uuid;

#[tokio::test]
async fn insert_then_get_round_trips_every_field() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        assert_eq!(s.backend(), b.name);
        s.ping().await.unwrap();
        let parent = insert(s, new_ws("parent", None, at(0))).await;
        let mut ws = new_ws("child", Some(parent), at(1));
        ws.role = Some("researcher".into());
        ws.tier = 3;
        ws.status = S::Online;
        ws.url = Some("http://10.1.2.3:8000".into());
        ws.awareness_namespace = Some(format!("workspace:{}", ws.id));
        ws.runtime = "external".into();
        ws.workspace_dir = Some("/srv/ws".into());
        ws.workspace_access = "read_write".into();
        ws.source_bundle_id = Some("bundle-7".into());
        ws.x = 12.5;
        ws.y = -3.25;
        s.workspace_insert(&ws).await.unwrap();

        let row = s.workspace_get(ws.id).await.unwrap().expect("row exists");
        assert_eq!(row.id, ws.id);
        assert_eq!(row.name, "child");
        assert_eq!(row.role.as_deref(), Some("researcher"));
        assert_eq!(row.tier, 3);
        assert_eq!(row.status, S::Online);
        assert_eq!(row.status_reason, None);
        assert_eq!(row.source_bundle_id.as_deref(), Some("bundle-7"));
        assert_eq!(row.agent_card, None);
        assert_eq!(row.url.as_deref(), Some("http://10.1.2.3:8000"));
        assert_eq!(row.parent_id, Some(parent));
        assert_eq!(row.last_heartbeat_at, None);
        assert_eq!(row.last_error_rate, 0.0);
        assert_eq!(row.last_sample_error, None);
        assert_eq!((row.active_tasks, row.uptime_seconds), (0, 0));
        assert_eq!(row.current_task, None);
        assert_eq!(row.awareness_namespace, ws.awareness_namespace);
        assert!(row.runtime.is_external());
        assert_eq!(row.workspace_dir.as_deref(), Some("/srv/ws"));
        assert_eq!(row.workspace_access, "read_write");
        assert_eq!((row.created_at, row.updated_at), (at(1), at(1)));
        assert_eq!((row.x, row.y, row.collapsed), (12.5, -3.25, false));

        assert_eq!(s.workspace_get(Uuid::new_v4()).await.unwrap(), None);
        // The id is the primary key.
        assert!(s.workspace_insert(&ws).await.is_err());
        // workspace_access is CHECKed.
        let mut bad = new_ws("bad", None, at(2));
        bad.workspace_access = "everything".into();
        assert!(s.workspace_insert(&bad).await.is_err());
        assert_eq!(s.workspace_get(bad.id).await.unwrap(), None);
        b.finish().await;
    }
}

#[tokio::test]
async fn list_orders_by_created_at_then_id_and_hides_removed() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let late = insert(s, new_ws("late", None, at(20))).await;
        let mut tied = [
            insert(s, new_ws("tie-1", None, at(10))).await,
            insert(s, new_ws("tie-2", None, at(10))).await,
        ];
        tied.sort();
        let early = insert(s, new_ws("early", None, at(5))).await;
        let mut gone = new_ws("gone", None, at(1));
        gone.status = S::Removed;
        let gone = insert(s, gone).await;

        let ids: Vec<Uuid> = s
            .workspace_list()
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![early, tied[0], tied[1], late]);
        // Removed rows are still readable one by one.
        assert_eq!(
            s.workspace_get(gone).await.unwrap().unwrap().status,
            S::Removed
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn list_children_of_roots_and_of_a_parent() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let root_a = insert(s, new_ws("a", None, at(1))).await;
        let root_b = insert(s, new_ws("b", None, at(2))).await;
        let child_2 = insert(s, new_ws("a2", Some(root_a), at(4))).await;
        let child_1 = insert(s, new_ws("a1", Some(root_a), at(3))).await;
        let mut removed = new_ws("a3", Some(root_a), at(5));
        removed.status = S::Removed;
        insert(s, removed).await;
        let mut removed_root = new_ws("c", None, at(6));
        removed_root.status = S::Removed;
        insert(s, removed_root).await;
        insert(s, new_ws("b1", Some(root_b), at(7))).await;

        let ids = |rows: Vec<molecule_store::WorkspaceRow>| -> Vec<Uuid> {
            rows.iter().map(|r| r.id).collect()
        };
        assert_eq!(
            ids(s.workspace_list_children(None).await.unwrap()),
            vec![root_a, root_b]
        );
        assert_eq!(
            ids(s.workspace_list_children(Some(root_a)).await.unwrap()),
            vec![child_1, child_2]
        );
        assert!(
            s.workspace_list_children(Some(child_1))
                .await
                .unwrap()
                .is_empty()
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn hierarchy_and_parent_include_removed_rows() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let root = insert(s, new_ws("root", None, at(1))).await;
        let mut child = new_ws("child", Some(root), at(2));
        child.status = S::Removed;
        let child = insert(s, child).await;

        let mut hierarchy = s.workspace_hierarchy().await.unwrap();
        hierarchy.sort();
        let mut expected = vec![(root, None), (child, Some(root))];
        expected.sort();
        assert_eq!(hierarchy, expected);
        assert_eq!(s.workspace_parent(root).await.unwrap(), Some(None));
        assert_eq!(s.workspace_parent(child).await.unwrap(), Some(Some(root)));
        assert_eq!(s.workspace_parent(Uuid::new_v4()).await.unwrap(), None);
        b.finish().await;
    }
}

#[tokio::test]
async fn patch_writes_only_supplied_fields_and_clears_nullables() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let parent = insert(s, new_ws("parent", None, at(0))).await;
        let mut ws = new_ws("before", Some(parent), at(1));
        ws.role = Some("writer".into());
        ws.workspace_dir = Some("/data".into());
        ws.x = 1.0;
        ws.y = 2.0;
        let id = insert(s, ws).await;

        let rename = WorkspacePatch {
            name: Some("after".into()),
            position: Some((30.0, 40.0)),
            ..Default::default()
        };
        assert!(s.workspace_patch(id, &rename, at(10)).await.unwrap());
        let row = s.workspace_get(id).await.unwrap().unwrap();
        assert_eq!(row.name, "after");
        assert_eq!((row.x, row.y), (30.0, 40.0));
        assert_eq!(row.role.as_deref(), Some("writer"));
        assert_eq!(row.workspace_dir.as_deref(), Some("/data"));
        assert_eq!(row.parent_id, Some(parent));
        assert_eq!((row.tier, row.runtime.as_str()), (1, "langgraph"));
        assert_eq!(row.updated_at, at(10));
        assert_eq!(row.created_at, at(1));

        let clear = WorkspacePatch {
            role: Some(None),
            parent_id: Some(None),
            workspace_dir: Some(None),
            tier: Some(4),
            runtime: Some("external".into()),
            ..Default::default()
        };
        assert!(s.workspace_patch(id, &clear, at(11)).await.unwrap());
        let row = s.workspace_get(id).await.unwrap().unwrap();
        assert_eq!(
            (row.role, row.parent_id, row.workspace_dir),
            (None, None, None)
        );
        assert_eq!((row.tier, row.runtime.as_str()), (4, "external"));
        assert_eq!(row.name, "after");
        assert_eq!((row.x, row.y), (30.0, 40.0));

        // Setting a nullable field back to a value.
        let set = WorkspacePatch {
            role: Some(Some("lead".into())),
            parent_id: Some(Some(parent)),
            ..Default::default()
        };
        assert!(s.workspace_patch(id, &set, at(12)).await.unwrap());
        let row = s.workspace_get(id).await.unwrap().unwrap();
        assert_eq!(
            (row.role.as_deref(), row.parent_id),
            (Some("lead"), Some(parent))
        );

        // A position on a row without a layout creates the layout.
        let registered = Uuid::new_v4();
        s.workspace_register(registered, "http://x", &serde_json::json!({}), at(13))
            .await
            .unwrap();
        let position = WorkspacePatch {
            position: Some((7.0, 8.0)),
            ..Default::default()
        };
        assert!(
            s.workspace_patch(registered, &position, at(14))
                .await
                .unwrap()
        );
        let row = s.workspace_get(registered).await.unwrap().unwrap();
        assert_eq!((row.x, row.y), (7.0, 8.0));

        let missing = Uuid::new_v4();
        assert!(!s.workspace_patch(missing, &rename, at(15)).await.unwrap());
        assert_eq!(s.workspace_get(missing).await.unwrap(), None);
        b.finish().await;
    }
}

#[tokio::test]
async fn patch_is_all_or_nothing() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let mut ws = new_ws("keep", None, at(1));
        ws.x = 1.0;
        let id = insert(s, ws).await;
        // The layout upsert succeeds, then the foreign key on parent_id fails:
        // nothing of the patch may remain.
        let patch = WorkspacePatch {
            name: Some("lost".into()),
            parent_id: Some(Some(Uuid::new_v4())),
            position: Some((99.0, 99.0)),
            ..Default::default()
        };
        assert!(s.workspace_patch(id, &patch, at(5)).await.is_err());
        let row = s.workspace_get(id).await.unwrap().unwrap();
        assert_eq!(row.name, "keep");
        assert_eq!(row.parent_id, None);
        assert_eq!((row.x, row.y), (1.0, 0.0));
        assert_eq!(row.updated_at, at(1));
        b.finish().await;
    }
}

#[tokio::test]
async fn descendants_walk_three_levels_and_skip_removed() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let root = insert(s, new_ws("root", None, at(0))).await;
        let a = insert(s, new_ws("a", Some(root), at(1))).await;
        let b1 = insert(s, new_ws("b1", Some(a), at(2))).await;
        let b2 = insert(s, new_ws("b2", Some(a), at(3))).await;
        let c = insert(s, new_ws("c", Some(b1), at(4))).await;
        let mut gone = new_ws("gone", Some(root), at(5));
        gone.status = S::Removed;
        let gone = insert(s, gone).await;
        // Below a removed row: not reachable through live rows.
        insert(s, new_ws("orphan", Some(gone), at(6))).await;
        insert(s, new_ws("elsewhere", None, at(7))).await;

        let mut got = s.workspace_descendants(root).await.unwrap();
        got.sort();
        let mut expected = vec![
            (a, "a".to_string()),
            (b1, "b1".to_string()),
            (b2, "b2".to_string()),
            (c, "c".to_string()),
        ];
        expected.sort();
        assert_eq!(got, expected);
        let mut below_a = s.workspace_descendants(a).await.unwrap();
        below_a.sort();
        let mut expected_a = vec![
            (b1, "b1".to_string()),
            (b2, "b2".to_string()),
            (c, "c".to_string()),
        ];
        expected_a.sort();
        assert_eq!(below_a, expected_a);
        assert!(s.workspace_descendants(c).await.unwrap().is_empty());
        b.finish().await;
    }
}

#[tokio::test]
async fn remove_many_marks_removed_drops_layouts_and_revokes_tokens() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let mut ids = Vec::new();
        for (i, name) in ["a", "b", "keep"].iter().enumerate() {
            let mut ws = new_ws(name, None, at(i as i64));
            ws.status = S::Online;
            ws.x = 10.0;
            ws.y = 20.0;
            ids.push(insert(s, ws).await);
            s.token_insert(ids[i], name.as_bytes(), "pfx", at(i as i64))
                .await
                .unwrap();
        }
        assert_eq!(s.token_count_live().await.unwrap(), 3);

        s.workspace_remove_many(&ids[..2], at(50)).await.unwrap();
        for (id, token) in ids[..2].iter().zip(["a", "b"]) {
            let row = s.workspace_get(*id).await.unwrap().unwrap();
            assert_eq!(row.status, S::Removed);
            assert_eq!(row.name, token, "only status and updated_at change");
            assert_eq!(row.updated_at, at(50));
            assert_eq!((row.x, row.y), (0.0, 0.0), "layout row deleted");
            assert!(!s.token_has_live(*id).await.unwrap());
            assert_eq!(
                s.token_lookup(token.as_bytes(), at(51)).await.unwrap(),
                None
            );
        }
        let kept = s.workspace_get(ids[2]).await.unwrap().unwrap();
        assert_eq!((kept.status, kept.x, kept.y), (S::Online, 10.0, 20.0));
        assert_eq!(s.token_lookup(b"keep", at(51)).await.unwrap(), Some(ids[2]));
        assert_eq!(s.token_count_live().await.unwrap(), 1);
        let listed: Vec<Uuid> = s
            .workspace_list()
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(listed, vec![ids[2]]);

        s.workspace_remove_many(&[], at(60)).await.unwrap();
        assert_eq!(s.workspace_list().await.unwrap().len(), 1);
        b.finish().await;
    }
}

#[tokio::test]
async fn transition_applies_only_from_its_statuses() {
    use molecule_types::Transition as T;
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let id = insert(s, new_ws("ws", None, at(0))).await;

        assert!(
            s.workspace_transition(id, T::EXTERNAL_ONLINE, None, at(1))
                .await
                .unwrap()
        );
        // The guard no longer matches: nothing changes.
        assert!(
            !s.workspace_transition(id, T::PROVISIONING_PROGRESS, Some("x"), at(2))
                .await
                .unwrap()
        );
        let row = s.workspace_get(id).await.unwrap().unwrap();
        assert_eq!(
            (row.status, row.status_reason, row.updated_at),
            (S::Online, None, at(1))
        );

        assert!(
            s.workspace_transition(id, T::LOST, Some("heartbeat lost"), at(3))
                .await
                .unwrap()
        );
        let row = s.workspace_get(id).await.unwrap().unwrap();
        assert_eq!(row.status, S::Offline);
        assert_eq!(row.status_reason.as_deref(), Some("heartbeat lost"));
        assert_eq!(row.updated_at, at(3));

        // The reason can be cleared.
        assert!(
            s.workspace_transition(id, T::PAUSE, None, at(4))
                .await
                .unwrap()
        );
        let row = s.workspace_get(id).await.unwrap().unwrap();
        assert_eq!((row.status, row.status_reason), (S::Paused, None));
        // Only an operator leaves paused.
        for t in [T::GOVERNED_RESTART, T::FAIL, T::PAUSE, T::RETURN] {
            assert!(
                !s.workspace_transition(id, t, Some("x"), at(5))
                    .await
                    .unwrap(),
                "{}",
                t.name()
            );
        }
        assert!(
            s.workspace_transition(id, T::OPERATOR_RESTART, Some("resumed"), at(6))
                .await
                .unwrap()
        );
        s.workspace_remove_many(&[id], at(7)).await.unwrap();
        // Nothing leaves removed.
        for t in T::ALL {
            assert!(
                !s.workspace_transition(id, t, None, at(8)).await.unwrap(),
                "{}",
                t.name()
            );
        }
        assert_eq!(
            s.workspace_get(id).await.unwrap().unwrap().status,
            S::Removed
        );
        assert!(
            !s.workspace_transition(Uuid::new_v4(), T::OPERATOR_RESTART, None, at(9))
                .await
                .unwrap()
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn list_by_status_selects_exactly_those_statuses() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let s = &*b.store;
        let mut by_status = Vec::new();
        for (i, st) in [S::Online, S::Failed, S::Removed, S::Online, S::Paused]
            .into_iter()
            .enumerate()
        {
            let mut ws = new_ws(st.as_str(), None, at(i as i64));
            ws.status = st;
            by_status.push((st, insert(s, ws).await));
        }
        let ids_of = |want: &[S]| -> Vec<Uuid> {
            by_status
                .iter()
                .filter(|(st, _)| want.contains(st))
                .map(|(_, id)| *id)
                .collect()
        };
        let got = |rows: Vec<molecule_store::WorkspaceRow>| -> Vec<Uuid> {
            rows.iter().map(|r| r.id).collect()
        };
        let want = [S::Online, S::Removed];
        assert_eq!(
            got(s.workspace_list_by_status(&want).await.unwrap()),
            ids_of(&want)
        );
        assert_eq!(
            got(s.workspace_list_by_status(&[S::Paused]).await.unwrap()),
            ids_of(&[S::Paused])
        );
        assert!(
            s.workspace_list_by_status(&[S::Degraded])
                .await
                .unwrap()
                .is_empty()
        );
        assert!(s.workspace_list_by_status(&[]).await.unwrap().is_empty());
        b.finish().await;
    }
}
