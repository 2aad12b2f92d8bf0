//! The schema itself: migrations applied once, column defaults, the
//! deliberate index changes, full-text search and corrupt-row handling.
//! These cases reach under the trait with raw SQL.

use crate::{Raw, at, insert, new_ws, stores};
use molecule_store::{StoreError, WorkspaceStatus as S};

#[tokio::test]
async fn migrations_apply_once_and_reopening_keeps_data() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let id = insert(&*b.store, new_ws("persisted", None, at(0))).await;
        let expected = match b.name {
            "sqlite" => sqlx::migrate!("migrations/sqlite").iter().count(),
            _ => sqlx::migrate!("migrations/postgres").iter().count(),
        } as i64;
        assert!(expected >= 1);
        // Opening again runs the migrator again; it must find nothing to do.
        for _ in 0..2 {
            let again = molecule_store::open(&b.url).await.expect("reopen");
            assert_eq!(again.backend(), b.name);
            assert_eq!(
                again.workspace_get(id).await.unwrap().unwrap().name,
                "persisted"
            );
        }
        let raw = b.raw().await;
        assert_eq!(
            raw.count("SELECT COUNT(*) FROM _sqlx_migrations").await,
            expected
        );
        assert_eq!(
            raw.count("SELECT COUNT(DISTINCT version) FROM _sqlx_migrations WHERE success")
                .await,
            expected
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn column_defaults_follow_the_spec() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let raw = b.raw().await;
        // Everything but the name from column defaults, including id and
        // timestamps: the store must read what the schema generates.
        raw.execute("INSERT INTO workspaces (name) VALUES ('raw')")
            .await
            .unwrap();
        let rows = b.store.workspace_list().await.unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.name, "raw");
        assert_eq!(row.status, S::Provisioning);
        assert_eq!((row.tier, row.runtime.as_str()), (1, "langgraph"));
        assert_eq!(row.workspace_access, "none");
        assert_eq!(
            (row.last_error_rate, row.active_tasks, row.uptime_seconds),
            (0.0, 0, 0)
        );
        assert_eq!(row.id.get_version_num(), 4);
        let age = chrono::Utc::now() - row.created_at;
        assert!(
            age.num_seconds().abs() < 60,
            "created_at default is now: {}",
            row.created_at
        );
        assert_eq!(row.created_at, row.updated_at);
        b.finish().await;
    }
}

#[tokio::test]
async fn unnamed_schedules_do_not_collide_but_names_do() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        insert(&*b.store, new_ws("ws", None, at(0))).await;
        let raw = b.raw().await;
        for _ in 0..2 {
            raw.execute(
                "INSERT INTO workspace_schedules (workspace_id, cron_expr, prompt) \
                 SELECT id, '0 * * * *', 'report' FROM workspaces",
            )
            .await
            .expect("a second unnamed schedule is allowed");
        }
        let named = "INSERT INTO workspace_schedules (workspace_id, name, cron_expr, prompt) \
                     SELECT id, 'daily', '0 9 * * *', 'standup' FROM workspaces";
        raw.execute(named).await.unwrap();
        assert!(
            raw.execute(named).await.is_err(),
            "names stay unique per workspace"
        );
        assert_eq!(
            raw.count("SELECT COUNT(*) FROM workspace_schedules").await,
            3
        );
        assert_eq!(
            raw.count(
                "SELECT COUNT(*) FROM workspace_schedules \
                 WHERE source = 'runtime' AND timezone = 'UTC' AND run_count = 0"
            )
            .await,
            3
        );
        assert!(
            raw.execute(
                "INSERT INTO workspace_schedules (workspace_id, cron_expr, prompt, source) \
                 SELECT id, '* * * * *', 'p', 'elsewhere' FROM workspaces"
            )
            .await
            .is_err(),
            "source is CHECKed"
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn activity_idempotency_key_is_unique_per_workspace() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        insert(&*b.store, new_ws("ws", None, at(0))).await;
        let raw = b.raw().await;
        let keyed = "INSERT INTO activity_logs (workspace_id, activity_type, idempotency_key) \
                     SELECT id, 'a2a_send', 'k1' FROM workspaces";
        let unkeyed = "INSERT INTO activity_logs (workspace_id, activity_type) \
                       SELECT id, 'a2a_send' FROM workspaces";
        raw.execute(keyed).await.unwrap();
        assert!(raw.execute(keyed).await.is_err());
        raw.execute(unkeyed).await.unwrap();
        raw.execute(unkeyed).await.unwrap();
        assert_eq!(
            raw.count("SELECT COUNT(*) FROM activity_logs WHERE status = 'ok'")
                .await,
            3
        );
        b.finish().await;
    }
}

/// Memories whose content matches "run" through the backend's full-text index.
async fn run_matches(raw: &Raw) -> i64 {
    let sql = match raw {
        Raw::Sqlite(_) => {
            "SELECT COUNT(*) FROM agent_memories WHERE seq IN \
             (SELECT rowid FROM agent_memories_fts WHERE agent_memories_fts MATCH 'run')"
        }
        Raw::Postgres(_) => {
            "SELECT COUNT(*) FROM agent_memories \
             WHERE content_tsv @@ plainto_tsquery('english', 'run')"
        }
    };
    raw.count(sql).await
}

#[tokio::test]
async fn memory_full_text_index_follows_inserts_updates_and_deletes() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let raw = b.raw().await;
        raw.execute(
            "INSERT INTO agent_memories (content, scope) VALUES \
             ('the runners were running late', 'LOCAL'), ('nothing relevant', 'TEAM')",
        )
        .await
        .unwrap();
        assert_eq!(run_matches(&raw).await, 1, "stemmed match after insert");
        raw.execute("UPDATE agent_memories SET content = 'we run daily' WHERE scope = 'TEAM'")
            .await
            .unwrap();
        assert_eq!(run_matches(&raw).await, 2, "update indexed");
        raw.execute("DELETE FROM agent_memories WHERE scope = 'LOCAL'")
            .await
            .unwrap();
        assert_eq!(run_matches(&raw).await, 1, "delete unindexed");
        assert!(
            raw.execute("INSERT INTO agent_memories (content, scope) VALUES ('x', 'WORLD')")
                .await
                .is_err(),
            "scope is CHECKed"
        );
        assert_eq!(
            raw.count("SELECT COUNT(*) FROM agent_memories WHERE namespace = 'general'")
                .await,
            1
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn unknown_status_reads_as_corrupt() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let id = insert(&*b.store, new_ws("ws", None, at(0))).await;
        b.raw()
            .await
            .execute("UPDATE workspaces SET status = 'exploded'")
            .await
            .unwrap();
        let err = b.store.workspace_get(id).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "got {err:?}");
        assert!(matches!(
            b.store.workspace_list().await,
            Err(StoreError::Corrupt(_))
        ));
        b.finish().await;
    }
}

#[tokio::test]
async fn open_rejects_unknown_urls() {
    let err = molecule_store::open("mysql://localhost/db")
        .await
        .err()
        .expect("rejected");
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "got {err:?}");
}

#[tokio::test]
async fn a_new_sqlite_file_has_16_kib_pages() {
    for b in stores().await {
        if let Raw::Sqlite(_) = b.raw().await {
            // The activity writer appends kilobyte rows: bigger pages mean
            // fewer WAL frames and checkpoint copies for the same bytes.
            assert_eq!(b.raw().await.count("PRAGMA page_size").await, 16384);
        }
        b.finish().await;
    }
}
