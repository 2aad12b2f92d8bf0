//! `workspace_schedules` on SQLite, and the cron history read from
//! `activity_logs` (rows the scheduler writes through the activity queue).

use super::SqliteStore;
use super::codec::{get_opt_ts, get_ts, get_uuid, ts};
use crate::{
    ActivityRow, NewSchedule, Result, SchedulePatch, ScheduleRow, ScheduleRunResult, ScheduleStore,
    schedules::sql,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::WorkspaceId;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

macro_rules! columns {
    () => {
        "s.id, s.workspace_id, s.name, s.cron_expr, s.timezone, s.prompt, \
     s.enabled, s.last_run_at, s.next_run_at, s.run_count, COALESCE(s.last_status, '') AS last_status, \
     COALESCE(s.last_error, '') AS last_error, s.source, s.created_at, s.updated_at"
    };
}

fn row(r: &SqliteRow) -> Result<ScheduleRow> {
    Ok(ScheduleRow {
        id: get_uuid(r, "id")?,
        workspace_id: get_uuid(r, "workspace_id")?,
        name: r.try_get("name")?,
        cron_expr: r.try_get("cron_expr")?,
        timezone: r.try_get("timezone")?,
        prompt: r.try_get("prompt")?,
        enabled: r.try_get("enabled")?,
        last_run_at: get_opt_ts(r, "last_run_at")?,
        next_run_at: get_opt_ts(r, "next_run_at")?,
        run_count: r.try_get("run_count")?,
        last_status: crate::opt_word(r.try_get::<Option<&str>, _>("last_status")?)?,
        last_error: r.try_get("last_error")?,
        source: r.try_get("source")?,
        created_at: get_ts(r, "created_at")?,
        updated_at: get_ts(r, "updated_at")?,
    })
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn schedule_insert(&self, s: &NewSchedule) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(s.id.to_string())
            .bind(s.workspace_id.to_string())
            .bind(&s.name)
            .bind(&s.cron_expr)
            .bind(&s.timezone)
            .bind(&s.prompt)
            .bind(s.enabled)
            .bind(s.next_run_at.map(ts))
            .bind(&s.source)
            .bind(ts(s.now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn schedule_list(&self, workspace_id: Uuid) -> Result<Vec<ScheduleRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM workspace_schedules s WHERE s.workspace_id = $1 \
             ORDER BY s.created_at, s.id"
        ))
        .bind(workspace_id.to_string())
        .fetch_all(&self.reader)
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
        .bind(workspace_id.uuid().to_string())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
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
        // COALESCE keeps a column when the patch leaves it alone; next_run_at
        // needs a separate flag because NULL is a value it may be set to.
        let n = sqlx::query(sql::PATCH)
            .bind(workspace_id.to_string())
            .bind(id.to_string())
            .bind(&p.name)
            .bind(&p.cron_expr)
            .bind(&p.timezone)
            .bind(&p.prompt)
            .bind(p.enabled)
            .bind(p.next_run_at.is_some())
            .bind(p.next_run_at.flatten().map(ts))
            .bind(ts(now))
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn schedule_delete(&self, workspace_id: WorkspaceId, id: Uuid) -> Result<bool> {
        let n = sqlx::query(sql::DELETE)
            .bind(workspace_id.uuid().to_string())
            .bind(id.to_string())
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn schedule_list_due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<ScheduleRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM workspace_schedules s JOIN workspaces w ON w.id = s.workspace_id \
             WHERE s.enabled = 1 AND s.next_run_at IS NOT NULL AND s.next_run_at <= $1 \
             AND COALESCE(w.status, '') <> 'removed' ORDER BY s.next_run_at LIMIT $2"
        ))
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.reader)
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
             WHERE id = $1 AND next_run_at = $2 AND enabled = 1",
        )
        .bind(id.to_string())
        .bind(ts(seen))
        .bind(next.map(ts))
        .bind(ts(now))
        .execute(&self.writer)
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
            .bind(id.to_string())
            .bind(ts(now))
            .bind(ts(stale_before))
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn schedule_record_run(&self, id: Uuid, r: &ScheduleRunResult) -> Result<bool> {
        let n = sqlx::query(sql::RECORD_RUN)
            .bind(id.to_string())
            .bind(r.status.as_str())
            .bind(&r.error)
            .bind(ts(r.at))
            .bind(ts(r.started_at))
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn schedule_record_skip(&self, id: Uuid, r: &ScheduleRunResult) -> Result<bool> {
        let n = sqlx::query(sql::RECORD_SKIP)
            .bind(id.to_string())
            .bind(r.status.as_str())
            .bind(&r.error)
            .bind(ts(r.at))
            .bind(ts(r.started_at))
            .execute(&self.writer)
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
             AND json_extract(request_body, '$.schedule_id') = $2 \
             ORDER BY created_at DESC, rowid DESC LIMIT $3",
        )
        .bind(workspace_id.to_string())
        .bind(schedule_id.to_string())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(super::activity::activity_row).collect()
    }
}
