//! `workspaces` (with `canvas_layouts`) on PostgreSQL. Status rules are the
//! caller's; this module only applies the guards it is given.

use super::PostgresStore;
use super::codec::{select_workspace, workspace_row, workspace_rows};
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
use std::collections::BTreeMap;
use uuid::Uuid;

#[async_trait]
impl WorkspaceStore for PostgresStore {
    async fn workspace_insert(&self, ws: &NewWorkspace) -> Result<()> {
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
        insert_in(&mut tx, ws).await?;
        sqlx::query(crate::seeds::sql::PUT)
            .bind(ws.id)
            .bind(
                serde_json::to_value(seed)
                    .map_err(|e| crate::StoreError::Corrupt(format!("seed files: {e}")))?,
            )
            .bind(ws.now)
            .execute(&mut *tx)
            .await?;
        for secret in secrets {
            sqlx::query(crate::secrets::sql::SET_WORKSPACE)
                .bind(Uuid::new_v4())
                .bind(ws.id)
                .bind(&secret.key)
                .bind(&secret.value)
                .bind(secret.encryption_version)
                .bind(ws.now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn workspace_get(&self, id: Uuid) -> Result<Option<WorkspaceRow>> {
        let row = sqlx::query(concat!(select_workspace!(), "WHERE w.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(workspace_row).transpose()
    }

    async fn workspace_list(&self) -> Result<Vec<WorkspaceRow>> {
        let rows = sqlx::query(concat!(
            select_workspace!(),
            "WHERE w.status <> 'removed' ORDER BY w.created_at, w.id"
        ))
        .fetch_all(&self.pool)
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
                .bind(parent)
                .fetch_all(&self.pool)
                .await?
            }
            None => sqlx::query(concat!(
                select_workspace!(),
                "WHERE w.parent_id IS NULL AND w.status <> 'removed' ORDER BY w.created_at, w.id"
            ))
            .fetch_all(&self.pool)
            .await?,
        };
        workspace_rows(&rows)
    }

    async fn workspace_hierarchy(&self) -> Result<Vec<(Uuid, Option<Uuid>)>> {
        let rows = sqlx::query(sql::HIERARCHY).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("parent_id")?)))
            .collect()
    }

    async fn workspace_parent(&self, id: Uuid) -> Result<Option<Option<Uuid>>> {
        let row = sqlx::query(sql::PARENT)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("parent_id")).transpose()?)
    }

    async fn workspace_patch(
        &self,
        id: Uuid,
        patch: &WorkspacePatch,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: the row cannot change between the existence check and the write.
        let exists = sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        if let Some((x, y)) = patch.position {
            sqlx::query(sql::UPSERT_LAYOUT)
                .bind(id)
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
                .bind(id)
                .bind(patch.name.is_some())
                .bind(patch.name.as_deref())
                .bind(patch.role.is_some())
                .bind(patch.role.as_ref().and_then(|r| r.as_deref()))
                .bind(patch.tier.is_some())
                .bind(patch.tier)
                .bind(patch.parent_id.is_some())
                .bind(patch.parent_id.flatten())
                .bind(patch.runtime.is_some())
                .bind(patch.runtime.as_ref().map(Runtime::as_str))
                .bind(patch.workspace_dir.is_some())
                .bind(patch.workspace_dir.as_ref().and_then(|d| d.as_deref()))
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn workspace_descendants(&self, id: Uuid) -> Result<Vec<(Uuid, String)>> {
        // UNION (not UNION ALL) ends the recursion even if parent links form a cycle.
        let rows = sqlx::query(sql::DESCENDANTS)
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
            .collect()
    }

    async fn workspace_remove_many(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE workspaces SET status = 'removed', updated_at = $2 WHERE id = ANY($1)")
            .bind(ids)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM canvas_layouts WHERE workspace_id = ANY($1)")
            .bind(ids)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE workspace_auth_tokens SET revoked_at = $2 \
             WHERE workspace_id = ANY($1) AND revoked_at IS NULL",
        )
        .bind(ids)
        .bind(now)
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
        transition_on(&self.pool, id, transition, reason, now).await
    }

    async fn workspace_register(
        &self,
        id: Uuid,
        url: &str,
        agent_card: &Value,
        now: DateTime<Utc>,
    ) -> Result<RegisterOutcome> {
        let mut tx = self.pool.begin().await?;
        // DO NOTHING waits for a concurrent insert of the same id to finish, so
        // exactly one racer sees `Inserted`.
        let inserted = sqlx::query(
            "INSERT INTO workspaces (id, name, status, url, agent_card, last_heartbeat_at, \
             created_at, updated_at) VALUES ($1, $2, 'online', $3, $4, $5, $5, $5) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(id.to_string())
        .bind(url)
        .bind(agent_card)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted > 0 {
            tx.commit().await?;
            return Ok(RegisterOutcome::Inserted);
        }
        let status: String = sqlx::query("SELECT status FROM workspaces WHERE id = $1 FOR UPDATE")
            .bind(id)
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
            .bind(id)
            .bind(agent_card)
            .bind(now)
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
        // UPDATE … FROM applies an arbitrary one of several matching source rows,
        // so keep the last beat per id (what one UPDATE per beat would leave).
        // Sorting by id gives concurrent batches one lock order.
        let latest: BTreeMap<Uuid, &HeartbeatWrite> = beats.iter().map(|b| (b.id, b)).collect();
        let mut ids = Vec::with_capacity(latest.len());
        let mut error_rates = Vec::with_capacity(latest.len());
        let mut sample_errors = Vec::with_capacity(latest.len());
        let mut active_tasks = Vec::with_capacity(latest.len());
        let mut uptimes = Vec::with_capacity(latest.len());
        let mut current_tasks = Vec::with_capacity(latest.len());
        let mut ats = Vec::with_capacity(latest.len());
        for (id, b) in latest {
            ids.push(id);
            error_rates.push(b.error_rate);
            sample_errors.push(b.sample_error.as_str());
            active_tasks.push(b.active_tasks);
            uptimes.push(b.uptime_seconds);
            current_tasks.push(b.current_task.as_str());
            ats.push(b.at);
        }
        // One statement for the whole batch: one round trip, one implicit transaction.
        sqlx::query(
            "UPDATE workspaces AS w SET last_error_rate = b.error_rate, \
             last_sample_error = b.sample_error, active_tasks = b.active_tasks, \
             uptime_seconds = b.uptime_seconds, current_task = b.current_task, \
             last_heartbeat_at = b.at, updated_at = b.at \
             FROM unnest($1::uuid[], $2::float8[], $3::text[], $4::int4[], $5::int4[], \
                         $6::text[], $7::timestamptz[]) \
                  AS b(id, error_rate, sample_error, active_tasks, uptime_seconds, current_task, at) \
             WHERE w.id = b.id AND w.status <> 'removed'",
        )
        .bind(ids)
        .bind(error_rates)
        .bind(sample_errors)
        .bind(active_tasks)
        .bind(uptimes)
        .bind(current_tasks)
        .bind(ats)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn workspace_set_url(&self, id: Uuid, url: &str, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(sql::SET_URL)
            .bind(id)
            .bind(url)
            .bind(now)
            .execute(&self.pool)
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
            .bind(id)
            .bind(agent_card)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn workspace_set_conformance(&self, id: Uuid, result: &Value) -> Result<bool> {
        let done = sqlx::query(sql::SET_CONFORMANCE)
            .bind(id)
            .bind(result)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn workspace_list_stale_external(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<WorkspaceRow>> {
        let rows = sqlx::query(concat!(
            select_workspace!(),
            "WHERE w.runtime = 'external' AND w.status IN ('online', 'degraded') \
             AND COALESCE(w.last_heartbeat_at, w.updated_at) < $1 ORDER BY w.created_at, w.id"
        ))
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        workspace_rows(&rows)
    }

    async fn workspace_list_by_status(
        &self,
        statuses: &[WorkspaceStatus],
    ) -> Result<Vec<WorkspaceRow>> {
        let statuses: Vec<&str> = statuses.iter().map(|st| st.as_str()).collect();
        let rows = sqlx::query(concat!(
            select_workspace!(),
            "WHERE w.status = ANY($1) ORDER BY w.created_at, w.id"
        ))
        .bind(statuses)
        .fetch_all(&self.pool)
        .await?;
        workspace_rows(&rows)
    }
}

/// The row and its layout, inside the caller's transaction.
async fn insert_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ws: &NewWorkspace,
) -> Result<()> {
    sqlx::query(sql::INSERT_WORKSPACE)
        .bind(ws.id)
        .bind(&ws.name)
        .bind(ws.role.as_deref())
        .bind(ws.tier)
        .bind(ws.status.as_str())
        .bind(ws.url.as_deref())
        .bind(ws.parent_id)
        .bind(ws.awareness_namespace.as_deref())
        .bind(ws.runtime.as_str())
        .bind(ws.workspace_dir.as_deref())
        .bind(&ws.workspace_access)
        .bind(ws.source_bundle_id.as_deref())
        .bind(ws.now)
        .execute(&mut **tx)
        .await?;
    sqlx::query(sql::INSERT_LAYOUT)
        .bind(ws.id)
        .bind(ws.x)
        .bind(ws.y)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The compare-and-set of `workspace_transition`, on any connection (the
/// pool's, or the leadership session's for a fenced write).
pub(super) async fn transition_on<'e>(
    on: impl sqlx::PgExecutor<'e>,
    id: Uuid,
    transition: Transition,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let from: Vec<&str> = transition.from().iter().map(|st| st.as_str()).collect();
    let done = sqlx::query(
        "UPDATE workspaces SET status = $2, status_reason = $3, updated_at = $4 \
         WHERE id = $1 AND status = ANY($5)",
    )
    .bind(id)
    .bind(transition.to().as_str())
    .bind(reason)
    .bind(now)
    .bind(from)
    .execute(on)
    .await?;
    Ok(done.rows_affected() > 0)
}
