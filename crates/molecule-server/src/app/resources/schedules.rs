//! Cron schedules (api-contract §5.8, data-and-lifecycle §4.3): CRUD,
//! validation, run-now, history and health. The scheduler that fires them is
//! `scheduler.rs`.
//!
//! Run policies, deliberately explicit:
//! * **claiming** — a due run belongs to whoever moves `next_run_at` from
//!   the value it read (`Store::schedule_claim`, a conditional update), so
//!   two schedulers (replicas, or overlapping ticks) never fire it twice;
//! * **missed runs** — after downtime an overdue schedule fires once and its
//!   next run is computed from now, not once per missed tick;
//! * **overlap** — while a schedule's previous run is still in flight (on
//!   any replica: the marker is `run_started_at` in the database), a new run
//!   is skipped and recorded as skipped;
//! * **busy workspace** (`active_tasks > 0`) — skipped and recorded;
//! * **removed workspaces** — their schedules are never due.

use chrono::{DateTime, Utc};
use molecule_store::{NewSchedule, SchedulePatch, ScheduleRow, StoreError};
use molecule_types::workspace_data::{
    CreateSchedule, Schedule, ScheduleCreated, ScheduleFired, ScheduleHealth, ScheduleRun,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::app::App;
use crate::app::auth::{PeerAccess, WorkspaceAccess};
use crate::app::resources::cron::{CronError, CronSchedule, parse_zone};
use crate::app::resources::scheduler::Trigger;
use crate::error::{AppError, AppResult};

/// History rows returned.
const HISTORY_LIMIT: i64 = 20;

fn cron_error(e: CronError) -> AppError {
    AppError::invalid(e.to_string())
}

/// Parse and compute the next activation after `now`.
fn next_run(
    expr: &str,
    zone: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, CronError> {
    parse_zone(zone)?;
    Ok(CronSchedule::parse(expr, zone)?.next_after(now))
}

fn name_conflict(name: &str) -> AppError {
    AppError::conflict(format!(
        "a schedule named {name:?} already exists in this workspace"
    ))
}

fn schedule_view(r: &ScheduleRow) -> Schedule {
    Schedule {
        id: r.id,
        workspace_id: r.workspace_id,
        name: r.name.clone(),
        cron_expr: r.cron_expr.clone(),
        timezone: r.timezone.clone(),
        prompt: r.prompt.clone(),
        enabled: r.enabled,
        last_run_at: r.last_run_at,
        next_run_at: r.next_run_at,
        run_count: r.run_count,
        last_status: r.last_status.map(|s| s.to_string()).unwrap_or_default(),
        last_error: r.last_error.clone(),
        source: r.source.clone(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// The size caps of a schedule's text fields (those given).
fn schedule_field_caps(
    name: Option<&str>,
    cron_expr: Option<&str>,
    timezone: Option<&str>,
    prompt: Option<&str>,
) -> AppResult<()> {
    use crate::app::validation::{LONG_TEXT_MAX, NAME_MAX, cap};
    for (field, value, max) in [
        ("name", name, NAME_MAX),
        ("cron_expr", cron_expr, NAME_MAX),
        ("timezone", timezone, NAME_MAX),
        ("prompt", prompt, LONG_TEXT_MAX),
    ] {
        if let Some(v) = value {
            cap(field, v, max)?;
        }
    }
    Ok(())
}

impl App {
    pub async fn schedule_list(&self, access: WorkspaceAccess) -> AppResult<Vec<Schedule>> {
        let ws = access.uuid();
        let rows = self
            .store
            .schedule_list(ws)
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows.iter().map(schedule_view).collect())
    }

    pub async fn schedule_create(
        &self,
        access: WorkspaceAccess,
        req: CreateSchedule,
    ) -> AppResult<ScheduleCreated> {
        self.schedule_add(access.uuid(), req, "runtime").await
    }

    /// The checks of a schedule that need no workspace: required fields,
    /// cron expression, time zone, caps.
    pub(crate) fn schedule_check(&self, req: &CreateSchedule) -> AppResult<()> {
        let cron_expr = req.cron_expr.trim();
        if cron_expr.is_empty() || req.prompt.trim().is_empty() {
            return Err(AppError::invalid("cron_expr and prompt are required"));
        }
        let timezone = req
            .timezone
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or("UTC");
        next_run(cron_expr, timezone, self.now()).map_err(cron_error)?;
        schedule_field_caps(
            Some(req.name.trim()),
            Some(cron_expr),
            Some(timezone),
            Some(&req.prompt),
        )
    }

    /// A new schedule of `ws`; `source` says who made it (`runtime`: the
    /// API, `template`: an org import).
    pub(crate) async fn schedule_add(
        &self,
        ws: Uuid,
        req: CreateSchedule,
        source: &str,
    ) -> AppResult<ScheduleCreated> {
        let cron_expr = req.cron_expr.trim().to_string();
        let prompt = req.prompt;
        if cron_expr.is_empty() || prompt.trim().is_empty() {
            return Err(AppError::invalid("cron_expr and prompt are required"));
        }
        let timezone = req
            .timezone
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "UTC".into());
        let now = self.now();
        let next_run_at = next_run(&cron_expr, &timezone, now).map_err(cron_error)?;
        let name = req.name.trim().to_string();
        schedule_field_caps(
            Some(&name),
            Some(&cron_expr),
            Some(&timezone),
            Some(&prompt),
        )?;
        let row = NewSchedule {
            id: Uuid::new_v4(),
            workspace_id: ws,
            name: name.clone(),
            cron_expr,
            timezone,
            prompt,
            enabled: req.enabled.unwrap_or(true),
            next_run_at,
            source: source.into(),
            now,
        };
        match self.store.schedule_insert(&row).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(name_conflict(&name)),
            Err(e) => return Err(AppError::internal("failed to create schedule")(e)),
        }
        Ok(ScheduleCreated {
            id: row.id,
            status: "created".into(),
            next_run_at,
        })
    }

    async fn schedule_row(&self, ws: Uuid, id: Uuid) -> AppResult<ScheduleRow> {
        self.store
            .schedule_get(ws.into(), id)
            .await
            .map_err(AppError::internal("query failed"))?
            .ok_or_else(|| AppError::not_found("schedule not found"))
    }

    /// PATCH: every supplied field type-checked first; cron/zone changes are
    /// re-validated and recompute `next_run_at`, and so does re-enabling a
    /// disabled schedule (so it does not fire at once for a stale time).
    pub async fn schedule_patch(
        &self,
        access: WorkspaceAccess,
        id: Uuid,
        body: Map<String, Value>,
    ) -> AppResult<()> {
        let ws = access.uuid();
        let text = |k: &str| -> AppResult<Option<String>> {
            match body.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(AppError::invalid(format!("{k} must be a string"))),
            }
        };
        let mut patch = SchedulePatch {
            name: text("name")?.map(|n| n.trim().to_string()),
            cron_expr: text("cron_expr")?.map(|c| c.trim().to_string()),
            timezone: text("timezone")?.map(|t| t.trim().to_string()),
            prompt: text("prompt")?,
            enabled: match body.get("enabled") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(AppError::invalid("enabled must be a boolean")),
            },
            next_run_at: None,
        };
        schedule_field_caps(
            patch.name.as_deref(),
            patch.cron_expr.as_deref(),
            patch.timezone.as_deref(),
            patch.prompt.as_deref(),
        )?;
        if patch.cron_expr.as_deref() == Some("") {
            return Err(AppError::invalid("cron_expr must not be empty"));
        }
        if patch.prompt.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(AppError::invalid("prompt must not be empty"));
        }
        if patch.timezone.as_deref() == Some("") {
            patch.timezone = Some("UTC".into());
        }
        let current = self.schedule_row(ws, id).await?;
        let now = self.now();
        let reenabled = patch.enabled == Some(true) && !current.enabled;
        if patch.cron_expr.is_some() || patch.timezone.is_some() || reenabled {
            let expr = patch.cron_expr.as_deref().unwrap_or(&current.cron_expr);
            let zone = patch.timezone.as_deref().unwrap_or(&current.timezone);
            patch.next_run_at = Some(next_run(expr, zone, now).map_err(cron_error)?);
        }
        match self.store.schedule_patch(ws, id, &patch, now).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AppError::not_found("schedule not found")),
            Err(StoreError::Conflict(_)) => {
                Err(name_conflict(patch.name.as_deref().unwrap_or_default()))
            }
            Err(e) => Err(AppError::internal("failed to update schedule")(e)),
        }
    }

    pub async fn schedule_delete(&self, access: WorkspaceAccess, id: Uuid) -> AppResult<()> {
        let ws = access.uuid();
        match self.store.schedule_delete(ws.into(), id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AppError::not_found("schedule not found")),
            Err(e) => Err(AppError::internal("failed to delete schedule")(e)),
        }
    }

    /// `POST …/run`: fires now through the same path as the scheduler
    /// (the reference only echoed the prompt). Does not move `next_run_at`.
    pub async fn schedule_run_now(
        &self,
        access: WorkspaceAccess,
        id: Uuid,
    ) -> AppResult<ScheduleFired> {
        let ws = access.uuid();
        let row = self.schedule_row(ws, id).await?;
        let answer = ScheduleFired {
            status: "fired".into(),
            workspace_id: ws,
            prompt: row.prompt.clone(),
        };
        self.cron_dispatch(row, Trigger::RunNow, self.now()).await;
        Ok(answer)
    }

    pub async fn schedule_history(
        &self,
        access: WorkspaceAccess,
        id: Uuid,
    ) -> AppResult<Vec<ScheduleRun>> {
        let ws = access.uuid();
        self.schedule_row(ws, id).await?;
        let rows = self
            .store
            .activity_cron_history(ws, id, HISTORY_LIMIT)
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows
            .into_iter()
            .map(|r| ScheduleRun {
                timestamp: r.created_at,
                duration_ms: r.duration_ms,
                status: r.status,
                error_detail: r.error_detail,
                request: r.request_body,
            })
            .collect())
    }

    /// `GET /workspaces/:id/schedules/health`: no workspace auth; the caller
    /// names itself in `X-Workspace-ID` and must be allowed to talk to `ws`.
    pub async fn schedule_health(&self, peer: PeerAccess) -> AppResult<Vec<ScheduleHealth>> {
        let ws = peer.uuid();
        let rows = self
            .store
            .schedule_list(ws)
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows
            .iter()
            .map(|r| ScheduleHealth::from(schedule_view(r)))
            .collect())
    }
}
