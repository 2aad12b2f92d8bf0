//! `workspace_schedules`: cron schedules, due-run claims and run results, and the
//! cron history read back from `activity_logs`.

use crate::{ActivityRow, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::RunStatus;
use molecule_types::WorkspaceId;
use uuid::Uuid;

#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Insert a schedule; a name already used in the workspace is
    /// [`StoreError::Conflict`].
    async fn schedule_insert(&self, s: &NewSchedule) -> Result<()>;

    /// The workspace's schedules, oldest first.
    async fn schedule_list(&self, workspace_id: Uuid) -> Result<Vec<ScheduleRow>>;

    /// One schedule, scoped to its workspace.
    async fn schedule_get(
        &self,
        workspace_id: WorkspaceId,
        id: Uuid,
    ) -> Result<Option<ScheduleRow>>;

    /// Apply a patch; false when no such schedule in that workspace. A
    /// colliding name is [`StoreError::Conflict`].
    async fn schedule_patch(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        patch: &SchedulePatch,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    async fn schedule_delete(&self, workspace_id: WorkspaceId, id: Uuid) -> Result<bool>;

    /// Enabled schedules with `next_run_at <= now` whose workspace is not
    /// removed, oldest `next_run_at` first, at most `limit`.
    async fn schedule_list_due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<ScheduleRow>>;

    /// Claim one due run: move `next_run_at` from `seen` (the value the
    /// claimer read) to `next` and set `last_run_at = now`, only if the row
    /// still has `next_run_at = seen` and is enabled. True = this caller
    /// owns the run; a concurrent claimer sees false.
    async fn schedule_claim(
        &self,
        id: Uuid,
        seen: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Mark a run of `id` in flight (`run_started_at = now`) unless one
    /// already is; a marker older than `stale_before` counts as abandoned.
    /// True = this caller may fire.
    async fn schedule_begin_run(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool>;

    /// Record the outcome of a fired run (`run_count + 1`, last status and
    /// error) and clear its in-flight marker.
    async fn schedule_record_run(&self, id: Uuid, result: &ScheduleRunResult) -> Result<bool>;

    /// Record a skipped run (`run_count + 1`, last status and error); the
    /// in-flight marker of another run is left alone.
    async fn schedule_record_skip(&self, id: Uuid, result: &ScheduleRunResult) -> Result<bool>;

    /// Newest `cron_run` activity rows of one schedule.
    async fn activity_cron_history(
        &self,
        workspace_id: Uuid,
        schedule_id: Uuid,
        limit: i64,
    ) -> Result<Vec<ActivityRow>>;
}

/// A `workspace_schedules` row.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub cron_expr: String,
    pub timezone: String,
    pub prompt: String,
    pub enabled: bool,
    pub last_run_at: Option<DateTime<Utc>>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub run_count: i32,
    /// `None` until the first run.
    pub last_status: Option<RunStatus>,
    pub last_error: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What `schedule_insert` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub cron_expr: String,
    pub timezone: String,
    pub prompt: String,
    pub enabled: bool,
    pub next_run_at: Option<DateTime<Utc>>,
    /// `runtime` (API) or `template` (org import).
    pub source: String,
    pub now: DateTime<Utc>,
}

/// A validated schedule PATCH: `None` leaves a column alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulePatch {
    pub name: Option<String>,
    pub cron_expr: Option<String>,
    pub timezone: Option<String>,
    pub prompt: Option<String>,
    pub enabled: Option<bool>,
    /// `Some(None)` clears it (the expression no longer parses).
    pub next_run_at: Option<Option<DateTime<Utc>>>,
}

/// The outcome of one run (fired, failed or skipped), written after a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRunResult {
    pub status: RunStatus,
    pub error: String,
    /// When the run started: becomes `last_run_at`.
    pub started_at: DateTime<Utc>,
    /// When it finished: `updated_at`.
    pub at: DateTime<Utc>,
}

/// SQL both backends run as written (the dialects differ elsewhere).
pub(crate) mod sql {
    pub(crate) const INSERT: &str = "INSERT INTO workspace_schedules (id, workspace_id, name, cron_expr, timezone, prompt, \
             enabled, next_run_at, source, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)";

    pub(crate) const PATCH: &str = "UPDATE workspace_schedules SET name = COALESCE($3, name), \
             cron_expr = COALESCE($4, cron_expr), timezone = COALESCE($5, timezone), \
             prompt = COALESCE($6, prompt), enabled = COALESCE($7, enabled), \
             next_run_at = CASE WHEN $8 THEN $9 ELSE next_run_at END, updated_at = $10 \
             WHERE workspace_id = $1 AND id = $2";

    pub(crate) const DELETE: &str =
        "DELETE FROM workspace_schedules WHERE workspace_id = $1 AND id = $2";

    pub(crate) const BEGIN_RUN: &str = "UPDATE workspace_schedules SET run_started_at = $2 \
             WHERE id = $1 AND (run_started_at IS NULL OR run_started_at < $3)";

    pub(crate) const RECORD_RUN: &str = "UPDATE workspace_schedules SET run_count = run_count + 1, last_status = $2, \
             last_error = $3, updated_at = $4, last_run_at = $5, run_started_at = NULL WHERE id = $1";

    pub(crate) const RECORD_SKIP: &str = "UPDATE workspace_schedules SET run_count = run_count + 1, last_status = $2, \
             last_error = $3, updated_at = $4, last_run_at = $5 WHERE id = $1";
}
