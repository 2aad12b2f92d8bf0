//! `workspace_schedules` on PostgreSQL, and the cron history read from
//! `activity_logs` (rows the scheduler writes through the activity queue).

use super::PostgresStore;
use crate::{
    ActivityRow, NewSchedule, Result, SchedulePatch, ScheduleRow, ScheduleRunResult, ScheduleStore,
    schedules::sql,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::WorkspaceId;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

macro_rules! columns {
    () => {
        "s.id, s.workspace_id, s.name, s.cron_expr, s.timezone, s.prompt, s.enabled, \
         s.last_run_at, s.next_run_at, s.run_count, COALESCE(s.last_status, '') AS last_status, \
         COALESCE(s.last_error, '') AS last_error, s.source, s.created_at, s.updated_at"
    };
}

fn row(r: &PgRow) -> Result<ScheduleRow> {
    Ok(ScheduleRow {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        name: r.try_get("name")?,
        cron_expr: r.try_get("cron_expr")?,
        timezone: r.try_get("timezone")?,
        prompt: r.try_get("prompt")?,
        enabled: r.try_get("enabled")?,
        last_run_at: r.try_get("last_run_at")?,
        next_run_at: r.try_get("next_run_at")?,
        run_count: r.try_get("run_count")?,
        last_status: crate::opt_word(r.try_get::<Option<&str>, _>("last_status")?)?,
        last_error: r.try_get("last_error")?,
        source: r.try_get("source")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl ScheduleStore for PostgresStore {
    async fn schedule_insert(&self, s: &NewSchedule) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(s.id)
            .bind(s.workspace_id)
            .bind(&s.name)
            .bind(&s.cron_expr)
            .bind(&s.timezone)
            .bind(&s.prompt)
            .bind(s.enabled)
            .bind(s.next_run_at)
            .bind(&s.source)
            .bind(s.now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn schedule_list(&self, workspace_id: Uuid) -> Result<Vec<ScheduleRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM workspace_schedules s WHERE s.workspace_id = $1 ORDER BY s.created_at, s.id"
        ))
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    async fn schedule_get(
        &self,
        workspace_id: WorkspaceId,
        id: Uuid,
    ) -> Result<Option<ScheduleRow>> {
        let r = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM workspace_schedules s WHERE s.workspace_id = $1 AND s.id = $2"
        ))
        .bind(workspace_id.uuid())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(row).transpose()
    }

    async fn schedule_patch(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        p: &SchedulePatch,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = sqlx::query(sql::PATCH)
            .bind(workspace_id)
            .bind(id)
            .bind(&p.name)
            .bind(&p.cron_expr)
            .bind(&p.timezone)
            .bind(&p.prompt)
            .bind(p.enabled)
            .bind(p.next_run_at.is_some())
            .bind(p.next_run_at.flatten())
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn schedule_delete(&self, workspace_id: WorkspaceId, id: Uuid) -> Result<bool> {
        let n = sqlx::query(sql::DELETE)
            .bind(workspace_id.uuid())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn schedule_list_due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<ScheduleRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM workspace_schedules s JOIN workspaces w ON w.id = s.workspace_id \
             WHERE s.enabled AND s.next_run_at IS NOT NULL AND s.next_run_at <= $1 \
             AND COALESCE(w.status, '') <> 'removed' ORDER BY s.next_run_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    async fn schedule_claim(
        &self,
        id: Uuid,
        seen: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE workspace_schedules SET next_run_at = $3, last_run_at = $4, updated_at = $4 \
             WHERE id = $1 AND next_run_at = $2 AND enabled",
        )
        .bind(id)
        .bind(seen)
        .bind(next)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn schedule_begin_run(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool> {
        let n = sqlx::query(sql::BEGIN_RUN)
            .bind(id)
            .bind(now)
            .bind(stale_before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn schedule_record_run(&self, id: Uuid, r: &ScheduleRunResult) -> Result<bool> {
        let n = sqlx::query(sql::RECORD_RUN)
            .bind(id)
            .bind(r.status.as_str())
            .bind(&r.error)
            .bind(r.at)
            .bind(r.started_at)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn schedule_record_skip(&self, id: Uuid, r: &ScheduleRunResult) -> Result<bool> {
        let n = sqlx::query(sql::RECORD_SKIP)
            .bind(id)
            .bind(r.status.as_str())
            .bind(&r.error)
            .bind(r.at)
            .bind(r.started_at)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn activity_cron_history(
        &self,
        workspace_id: Uuid,
        schedule_id: Uuid,
        limit: i64,
    ) -> Result<Vec<ActivityRow>> {
        let rows = sqlx::query(
            "SELECT id, workspace_id, activity_type, source_id, source_label, target_id, method, \
             summary, request_body, response_body, duration_ms, COALESCE(status, 'ok') AS status, \
             error_detail, idempotency_key, created_at FROM activity_logs \
             WHERE workspace_id = $1 AND activity_type = 'cron_run' \
             AND request_body->>'schedule_id' = $2 \
             ORDER BY created_at DESC LIMIT $3",
        )
        .bind(workspace_id)
        .bind(schedule_id.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::activity::activity_row).collect()
    }
}
