//! `workspaces` (with `canvas_layouts`) on SQLite: reads on the reader pool,
//! every write in one writer transaction. Status rules are the caller's; this
//! module only applies the guards it is given.

use super::codec::{
    get_opt_uuid, get_uuid, json_list, parse_status, select_workspace, ts, workspace_row,
    workspace_rows,
};
use super::{BEGIN_WRITE, SqliteStore};
use crate::{
    HeartbeatWrite, NewWorkspace, RegisterOutcome, Result, WorkspacePatch, WorkspaceRow,
    WorkspaceStatus,
};
use chrono::{DateTime, Utc};
use molecule_types::Transition;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

pub(super) async fn insert(s: &SqliteStore, ws: &NewWorkspace) -> Result<()> {
    let id = ws.id.to_string();
    let mut tx = s.writer.begin_with(BEGIN_WRITE).await?;
    sqlx::query(
        "INSERT INTO workspaces (id, name, role, tier, status, url, parent_id, \
         awareness_namespace, runtime, workspace_dir, workspace_access, source_bundle_id, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(&id)
    .bind(&ws.name)
    .bind(ws.role.as_deref())
    .bind(ws.tier)
    .bind(ws.status.as_str())
    .bind(ws.url.as_deref())
    .bind(ws.parent_id.map(|p| p.to_string()))
    .bind(ws.awareness_namespace.as_deref())
    .bind(&ws.runtime)
    .bind(ws.workspace_dir.as_deref())
    .bind(&ws.workspace_access)
    .bind(ws.source_bundle_id.as_deref())
    .bind(ts(ws.now))
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO canvas_layouts (workspace_id, x, y) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(ws.x)
        .bind(ws.y)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(s: &SqliteStore, id: Uuid) -> Result<Option<WorkspaceRow>> {
    let row = sqlx::query(concat!(select_workspace!(), "WHERE w.id = $1"))
        .bind(id.to_string())
        .fetch_optional(&s.reader)
        .await?;
    row.as_ref().map(workspace_row).transpose()
}

pub(super) async fn list(s: &SqliteStore) -> Result<Vec<WorkspaceRow>> {
    let rows = sqlx::query(concat!(
        select_workspace!(),
        "WHERE w.status <> 'removed' ORDER BY w.created_at, w.id"
    ))
    .fetch_all(&s.reader)
    .await?;
    workspace_rows(&rows)
}

pub(super) async fn list_children(
    s: &SqliteStore,
    parent: Option<Uuid>,
) -> Result<Vec<WorkspaceRow>> {
    let rows =
        match parent {
            Some(parent) => {
                sqlx::query(concat!(
                    select_workspace!(),
                    "WHERE w.parent_id = $1 AND w.status <> 'removed' ORDER BY w.created_at, w.id"
                ))
                .bind(parent.to_string())
                .fetch_all(&s.reader)
                .await?
            }
            None => sqlx::query(concat!(
                select_workspace!(),
                "WHERE w.parent_id IS NULL AND w.status <> 'removed' ORDER BY w.created_at, w.id"
            ))
            .fetch_all(&s.reader)
            .await?,
        };
    workspace_rows(&rows)
}

pub(super) async fn hierarchy(s: &SqliteStore) -> Result<Vec<(Uuid, Option<Uuid>)>> {
    let rows = sqlx::query("SELECT id, parent_id FROM workspaces")
        .fetch_all(&s.reader)
        .await?;
    rows.iter()
        .map(|r| Ok((get_uuid(r, "id")?, get_opt_uuid(r, "parent_id")?)))
        .collect()
}

pub(super) async fn parent(s: &SqliteStore, id: Uuid) -> Result<Option<Option<Uuid>>> {
    let row = sqlx::query("SELECT parent_id FROM workspaces WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&s.reader)
        .await?;
    row.map(|r| get_opt_uuid(&r, "parent_id")).transpose()
}

pub(super) async fn patch(
    s: &SqliteStore,
    id: Uuid,
    patch: &WorkspacePatch,
    now: DateTime<Utc>,
) -> Result<bool> {
    let id = id.to_string();
    let mut tx = s.writer.begin_with(BEGIN_WRITE).await?;
    let exists = sqlx::query("SELECT 1 FROM workspaces WHERE id = $1")
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if !exists {
        return Ok(false);
    }
    if let Some((x, y)) = patch.position {
        sqlx::query(
            "INSERT INTO canvas_layouts (workspace_id, x, y) VALUES ($1, $2, $3) \
             ON CONFLICT (workspace_id) DO UPDATE SET x = excluded.x, y = excluded.y",
        )
        .bind(&id)
        .bind(x)
        .bind(y)
        .execute(&mut *tx)
        .await?;
    }
    let touches_row = patch.name.is_some()
        || patch.role.is_some()
        || patch.tier.is_some()
        || patch.parent_id.is_some()
        || patch.runtime.is_some()
        || patch.workspace_dir.is_some();
    if touches_row {
        // One static statement: each `CASE` keeps the column unless its flag
        // says the patch carries it.
        sqlx::query(
            "UPDATE workspaces SET \
             name = CASE WHEN $2 THEN $3 ELSE name END, \
             role = CASE WHEN $4 THEN $5 ELSE role END, \
             tier = CASE WHEN $6 THEN $7 ELSE tier END, \
             parent_id = CASE WHEN $8 THEN $9 ELSE parent_id END, \
             runtime = CASE WHEN $10 THEN $11 ELSE runtime END, \
             workspace_dir = CASE WHEN $12 THEN $13 ELSE workspace_dir END, \
             updated_at = $14 \
             WHERE id = $1",
        )
        .bind(&id)
        .bind(patch.name.is_some())
        .bind(patch.name.as_deref())
        .bind(patch.role.is_some())
        .bind(patch.role.as_ref().and_then(|r| r.as_deref()))
        .bind(patch.tier.is_some())
        .bind(patch.tier)
        .bind(patch.parent_id.is_some())
        .bind(patch.parent_id.flatten().map(|p| p.to_string()))
        .bind(patch.runtime.is_some())
        .bind(patch.runtime.as_deref())
        .bind(patch.workspace_dir.is_some())
        .bind(patch.workspace_dir.as_ref().and_then(|d| d.as_deref()))
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn descendants(s: &SqliteStore, id: Uuid) -> Result<Vec<(Uuid, String)>> {
    // UNION (not UNION ALL) ends the recursion even if parent links form a cycle.
    let rows = sqlx::query(
        "WITH RECURSIVE d(id, name) AS ( \
           SELECT id, name FROM workspaces WHERE parent_id = $1 AND status <> 'removed' \
           UNION \
           SELECT w.id, w.name FROM workspaces w JOIN d ON w.parent_id = d.id \
           WHERE w.status <> 'removed' \
         ) SELECT id, name FROM d WHERE id <> $1",
    )
    .bind(id.to_string())
    .fetch_all(&s.reader)
    .await?;
    rows.iter()
        .map(|r| Ok((get_uuid(r, "id")?, r.try_get("name")?)))
        .collect()
}

pub(super) async fn remove_many(s: &SqliteStore, ids: &[Uuid], now: DateTime<Utc>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids = json_list(ids);
    let now = ts(now);
    let mut tx = s.writer.begin_with(BEGIN_WRITE).await?;
    sqlx::query(
        "UPDATE workspaces SET status = 'removed', updated_at = $2 \
         WHERE id IN (SELECT value FROM json_each($1))",
    )
    .bind(&ids)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM canvas_layouts WHERE workspace_id IN (SELECT value FROM json_each($1))",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE workspace_auth_tokens SET revoked_at = $2 \
         WHERE workspace_id IN (SELECT value FROM json_each($1)) AND revoked_at IS NULL",
    )
    .bind(&ids)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn transition(
    s: &SqliteStore,
    id: Uuid,
    transition: Transition,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE workspaces SET status = $2, status_reason = $3, updated_at = $4 \
         WHERE id = $1 AND status IN (SELECT value FROM json_each($5))",
    )
    .bind(id.to_string())
    .bind(transition.to().as_str())
    .bind(reason)
    .bind(ts(now))
    .bind(json_list(transition.from().iter().map(|st| st.as_str())))
    .execute(&s.writer)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn register(
    s: &SqliteStore,
    id: Uuid,
    url: &str,
    agent_card: &Value,
    now: DateTime<Utc>,
) -> Result<RegisterOutcome> {
    let id = id.to_string();
    let card = agent_card.to_string();
    let now = ts(now);
    let mut tx = s.writer.begin_with(BEGIN_WRITE).await?;
    let inserted = sqlx::query(
        "INSERT INTO workspaces (id, name, status, url, agent_card, last_heartbeat_at, \
         created_at, updated_at) VALUES ($1, $1, 'online', $2, $3, $4, $4, $4) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&id)
    .bind(url)
    .bind(&card)
    .bind(&now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted > 0 {
        tx.commit().await?;
        return Ok(RegisterOutcome::Inserted);
    }
    let status: String = sqlx::query("SELECT status FROM workspaces WHERE id = $1")
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("status")?;
    let previous = parse_status(&status)?;
    if previous == WorkspaceStatus::Removed {
        return Ok(RegisterOutcome::SkippedRemoved);
    }
    // A url the platform set for a local container (http://127.0.0.1:<port>)
    // wins over what the agent reports from inside it.
    sqlx::query(
        "UPDATE workspaces SET agent_card = $2, status = 'online', status_reason = NULL, \
         last_heartbeat_at = $3, updated_at = $3, \
         url = CASE WHEN substr(url, 1, 16) = 'http://127.0.0.1' THEN url ELSE $4 END \
         WHERE id = $1",
    )
    .bind(&id)
    .bind(&card)
    .bind(&now)
    .bind(url)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(RegisterOutcome::Updated { previous })
}

pub(super) async fn heartbeat_many(s: &SqliteStore, beats: &[HeartbeatWrite]) -> Result<()> {
    if beats.is_empty() {
        return Ok(());
    }
    let mut tx = s.writer.begin_with(BEGIN_WRITE).await?;
    for beat in beats {
        // The prepared statement is cached per connection, so a batch costs
        // one step per row inside a single commit.
        sqlx::query(
            "UPDATE workspaces SET last_error_rate = $2, last_sample_error = $3, \
             active_tasks = $4, uptime_seconds = $5, current_task = $6, \
             last_heartbeat_at = $7, updated_at = $7 \
             WHERE id = $1 AND status <> 'removed'",
        )
        .bind(beat.id.to_string())
        .bind(beat.error_rate)
        .bind(&beat.sample_error)
        .bind(beat.active_tasks)
        .bind(beat.uptime_seconds)
        .bind(&beat.current_task)
        .bind(ts(beat.at))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn set_url(
    s: &SqliteStore,
    id: Uuid,
    url: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE workspaces SET url = $2, updated_at = $3 WHERE id = $1 AND status <> 'removed'",
    )
    .bind(id.to_string())
    .bind(url)
    .bind(ts(now))
    .execute(&s.writer)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn update_card(
    s: &SqliteStore,
    id: Uuid,
    agent_card: &Value,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE workspaces SET agent_card = $2, updated_at = $3 \
         WHERE id = $1 AND status <> 'removed'",
    )
    .bind(id.to_string())
    .bind(agent_card.to_string())
    .bind(ts(now))
    .execute(&s.writer)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn list_stale_external(
    s: &SqliteStore,
    before: DateTime<Utc>,
) -> Result<Vec<WorkspaceRow>> {
    // Text comparison is time comparison: every timestamp has one fixed width.
    let rows = sqlx::query(concat!(
        select_workspace!(),
        "WHERE w.runtime = 'external' AND w.status IN ('online', 'degraded') \
         AND COALESCE(w.last_heartbeat_at, w.updated_at) < $1 ORDER BY w.created_at, w.id"
    ))
    .bind(ts(before))
    .fetch_all(&s.reader)
    .await?;
    workspace_rows(&rows)
}

pub(super) async fn list_by_status(
    s: &SqliteStore,
    statuses: &[WorkspaceStatus],
) -> Result<Vec<WorkspaceRow>> {
    let rows = sqlx::query(concat!(
        select_workspace!(),
        "WHERE w.status IN (SELECT value FROM json_each($1)) ORDER BY w.created_at, w.id"
    ))
    .bind(json_list(statuses.iter().map(|st| st.as_str())))
    .fetch_all(&s.reader)
    .await?;
    workspace_rows(&rows)
}
