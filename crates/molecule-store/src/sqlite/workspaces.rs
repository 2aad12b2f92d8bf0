//! `workspaces` (with `canvas_layouts`) on SQLite: reads on the reader pool,
//! every write in one writer transaction. Status rules are the caller's; this
//! module only applies the guards it is given.

use super::codec::{
    get_opt_uuid, get_uuid, json_list, select_workspace, ts, workspace_row, workspace_rows,
};
use super::{BEGIN_WRITE, SqliteStore};
use crate::{
    HeartbeatWrite, NewWorkspace, RegisterOutcome, Result, WorkspacePatch, WorkspaceRow,
    WorkspaceStatus, WorkspaceStore, workspaces::sql,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::Runtime;
use molecule_types::Transition;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

#[async_trait]
impl WorkspaceStore for SqliteStore {
    async fn workspace_insert(&self, ws: &NewWorkspace) -> Result<()> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        insert_in(&mut tx, ws).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn workspace_insert_seeded(
        &self,
        ws: &NewWorkspace,
        seed: &crate::SeedFiles,
        secrets: &[crate::SealedSecret],
    ) -> Result<()> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        insert_in(&mut tx, ws).await?;
        sqlx::query(crate::seeds::sql::PUT)
            .bind(ws.id.to_string())
            .bind(
                serde_json::to_string(seed)
                    .map_err(|e| crate::StoreError::Corrupt(format!("seed files: {e}")))?,
            )
            .bind(ts(ws.now))
            .execute(&mut *tx)
            .await?;
        for secret in secrets {
            sqlx::query(crate::secrets::sql::SET_WORKSPACE)
                .bind(Uuid::new_v4().to_string())
                .bind(ws.id.to_string())
                .bind(&secret.key)
                .bind(&secret.value)
                .bind(secret.encryption_version)
                .bind(ts(ws.now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn workspace_get(&self, id: Uuid) -> Result<Option<WorkspaceRow>> {
        let row = sqlx::query(concat!(select_workspace!(), "WHERE w.id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(workspace_row).transpose()
    }

    async fn workspace_list(&self) -> Result<Vec<WorkspaceRow>> {
        let rows = sqlx::query(concat!(
            select_workspace!(),
            "WHERE w.status <> 'removed' ORDER BY w.created_at, w.id"
        ))
        .fetch_all(&self.reader)
        .await?;
        workspace_rows(&rows)
    }

    async fn workspace_list_children(&self, parent: Option<Uuid>) -> Result<Vec<WorkspaceRow>> {
        let rows = match parent {
            Some(parent) => {
                sqlx::query(concat!(
                    select_workspace!(),
                    "WHERE w.parent_id = $1 AND w.status <> 'removed' ORDER BY w.created_at, w.id"
                ))
                .bind(parent.to_string())
                .fetch_all(&self.reader)
                .await?
            }
            None => sqlx::query(concat!(
                select_workspace!(),
                "WHERE w.parent_id IS NULL AND w.status <> 'removed' ORDER BY w.created_at, w.id"
            ))
            .fetch_all(&self.reader)
            .await?,
        };
        workspace_rows(&rows)
    }

    async fn workspace_hierarchy(&self) -> Result<Vec<(Uuid, Option<Uuid>)>> {
        let rows = sqlx::query(sql::HIERARCHY).fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| Ok((get_uuid(r, "id")?, get_opt_uuid(r, "parent_id")?)))
            .collect()
    }

    async fn workspace_parent(&self, id: Uuid) -> Result<Option<Option<Uuid>>> {
        let row = sqlx::query(sql::PARENT)
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| get_opt_uuid(&r, "parent_id")).transpose()
    }

    async fn workspace_patch(
        &self,
        id: Uuid,
        patch: &WorkspacePatch,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let id = id.to_string();
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let exists = sqlx::query("SELECT 1 FROM workspaces WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        if let Some((x, y)) = patch.position {
            sqlx::query(sql::UPSERT_LAYOUT)
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
            sqlx::query(sql::PATCH)
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
                .bind(patch.runtime.as_ref().map(Runtime::as_str))
                .bind(patch.workspace_dir.is_some())
                .bind(patch.workspace_dir.as_ref().and_then(|d| d.as_deref()))
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn workspace_descendants(&self, id: Uuid) -> Result<Vec<(Uuid, String)>> {
        // UNION (not UNION ALL) ends the recursion even if parent links form a cycle.
        let rows = sqlx::query(sql::DESCENDANTS)
            .bind(id.to_string())
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| Ok((get_uuid(r, "id")?, r.try_get("name")?)))
            .collect()
    }

    async fn workspace_remove_many(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = json_list(ids);
        let now = ts(now);
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
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

    async fn workspace_transition(
        &self,
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
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn workspace_register(
        &self,
        id: Uuid,
        url: &str,
        agent_card: &Value,
        now: DateTime<Utc>,
    ) -> Result<RegisterOutcome> {
        let id = id.to_string();
        let card = agent_card.to_string();
        let now = ts(now);
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
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
        let previous = crate::word(&status)?;
        if previous == WorkspaceStatus::Removed {
            return Ok(RegisterOutcome::SkippedRemoved);
        }
        // A url the platform set for a local container (http://127.0.0.1:<port>)
        // wins over what the agent reports from inside it.
        sqlx::query(sql::REGISTER)
            .bind(&id)
            .bind(&card)
            .bind(&now)
            .bind(url)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RegisterOutcome::Updated { previous })
    }

    async fn workspace_heartbeat_many(&self, beats: &[HeartbeatWrite]) -> Result<()> {
        if beats.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
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

    async fn workspace_set_url(&self, id: Uuid, url: &str, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(sql::SET_URL)
            .bind(id.to_string())
            .bind(url)
            .bind(ts(now))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn workspace_update_card(
        &self,
        id: Uuid,
        agent_card: &Value,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(sql::UPDATE_CARD)
            .bind(id.to_string())
            .bind(agent_card.to_string())
            .bind(ts(now))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn workspace_set_conformance(&self, id: Uuid, result: &Value) -> Result<bool> {
        let done = sqlx::query(sql::SET_CONFORMANCE)
            .bind(id.to_string())
            .bind(result.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn workspace_list_stale_external(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<WorkspaceRow>> {
        // Text comparison is time comparison: every timestamp has one fixed width.
        let rows = sqlx::query(concat!(
            select_workspace!(),
            "WHERE w.runtime = 'external' AND w.status IN ('online', 'degraded') \
             AND COALESCE(w.last_heartbeat_at, w.updated_at) < $1 ORDER BY w.created_at, w.id"
        ))
        .bind(ts(before))
        .fetch_all(&self.reader)
        .await?;
        workspace_rows(&rows)
    }

    async fn workspace_list_by_status(
        &self,
        statuses: &[WorkspaceStatus],
    ) -> Result<Vec<WorkspaceRow>> {
        let rows = sqlx::query(concat!(
            select_workspace!(),
            "WHERE w.status IN (SELECT value FROM json_each($1)) ORDER BY w.created_at, w.id"
        ))
        .bind(json_list(statuses.iter().map(|st| st.as_str())))
        .fetch_all(&self.reader)
        .await?;
        workspace_rows(&rows)
    }
}

/// The row and its layout, inside the caller's transaction.
async fn insert_in(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, ws: &NewWorkspace) -> Result<()> {
    let id = ws.id.to_string();
    sqlx::query(sql::INSERT_WORKSPACE)
        .bind(&id)
        .bind(&ws.name)
        .bind(ws.role.as_deref())
        .bind(ws.tier)
        .bind(ws.status.as_str())
        .bind(ws.url.as_deref())
        .bind(ws.parent_id.map(|p| p.to_string()))
        .bind(ws.awareness_namespace.as_deref())
        .bind(ws.runtime.as_str())
        .bind(ws.workspace_dir.as_deref())
        .bind(&ws.workspace_access)
        .bind(ws.source_bundle_id.as_deref())
        .bind(ts(ws.now))
        .execute(&mut **tx)
        .await?;
    sqlx::query(sql::INSERT_LAYOUT)
        .bind(&id)
        .bind(ws.x)
        .bind(ws.y)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
