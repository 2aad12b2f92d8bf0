//! Cron schedules (api-contract §5.8, data-and-lifecycle §4.3,
//! subsystems §4): CRUD, history, health, and the scheduler that fires
//! them through the A2A proxy path.
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
use molecule_store::{
    NewActivity, NewSchedule, SchedulePatch, ScheduleRow, ScheduleRunResult, StoreError,
};
use molecule_types::{Event, EventType};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::App;
use super::a2a::Caller;
use super::cron::{CronError, CronSchedule, parse_zone};
use crate::error::{AppError, AppResult};

/// Due schedules handled per tick.
pub const DUE_PER_TICK: i64 = 50;
/// Fires running at once in this process.
pub const PARALLEL_FIRES: usize = 10;
/// The A2A deadline of one fire.
pub const FIRE_TIMEOUT: Duration = Duration::from_secs(300);
/// History rows returned.
const HISTORY_LIMIT: i64 = 20;

/// A run marked in flight longer than this (plus the fire timeout) was
/// abandoned (its process died) and no longer blocks the next run.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// The fire jobs of this process and the slots that bound them.
#[derive(Clone)]
pub struct InFlight {
    jobs: Arc<Mutex<JoinSet<()>>>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            jobs: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(PARALLEL_FIRES)),
        }
    }
}

impl InFlight {
    /// Reap finished fire jobs, logging any that panicked.
    fn reap(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            while let Some(done) = jobs.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a schedule fire panicked");
                }
            }
        }
    }
}

/// `POST /workspaces/:id/schedules` body.
#[derive(Debug, Deserialize)]
pub struct CreateSchedule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub cron_expr: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

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
    AppError::WithBody {
        status: axum::http::StatusCode::CONFLICT,
        body: json!({ "error": format!("a schedule named {name:?} already exists in this workspace") }),
    }
}

pub fn schedule_json(r: &ScheduleRow) -> Value {
    json!({
        "id": r.id,
        "workspace_id": r.workspace_id,
        "name": r.name,
        "cron_expr": r.cron_expr,
        "timezone": r.timezone,
        "prompt": r.prompt,
        "enabled": r.enabled,
        "last_run_at": r.last_run_at,
        "next_run_at": r.next_run_at,
        "run_count": r.run_count,
        "last_status": r.last_status,
        "last_error": r.last_error,
        "source": r.source,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    })
}

fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Tick,
    RunNow,
}

impl App {
    pub async fn schedule_list(&self, ws: Uuid) -> AppResult<Vec<Value>> {
        let rows = self
            .store
            .schedule_list(ws)
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows.iter().map(schedule_json).collect())
    }

    pub async fn schedule_create(&self, ws: Uuid, req: CreateSchedule) -> AppResult<Value> {
        let cron_expr = req.cron_expr.unwrap_or_default().trim().to_string();
        let prompt = req.prompt.unwrap_or_default();
        if cron_expr.is_empty() || prompt.trim().is_empty() {
            return Err(AppError::invalid("cron_expr and prompt are required"));
        }
        let timezone = req
            .timezone
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "UTC".into());
        let now = Utc::now();
        let next_run_at = next_run(&cron_expr, &timezone, now).map_err(cron_error)?;
        let name = req.name.unwrap_or_default().trim().to_string();
        let row = NewSchedule {
            id: Uuid::new_v4(),
            workspace_id: ws,
            name: name.clone(),
            cron_expr,
            timezone,
            prompt,
            enabled: req.enabled.unwrap_or(true),
            next_run_at,
            source: "runtime".into(),
            now,
        };
        match self.store.schedule_insert(&row).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(name_conflict(&name)),
            Err(e) => return Err(AppError::internal("failed to create schedule")(e)),
        }
        Ok(json!({ "id": row.id, "status": "created", "next_run_at": next_run_at }))
    }

    async fn schedule_row(&self, ws: Uuid, id: Uuid) -> AppResult<ScheduleRow> {
        self.store
            .schedule_get(ws, id)
            .await
            .map_err(AppError::internal("query failed"))?
            .ok_or_else(|| AppError::not_found("schedule not found"))
    }

    /// PATCH: every supplied field type-checked first; cron/zone changes are
    /// re-validated and recompute `next_run_at`, and so does re-enabling a
    /// disabled schedule (so it does not fire at once for a stale time).
    pub async fn schedule_patch(
        &self,
        ws: Uuid,
        id: Uuid,
        body: Map<String, Value>,
    ) -> AppResult<()> {
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
        let now = Utc::now();
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

    pub async fn schedule_delete(&self, ws: Uuid, id: Uuid) -> AppResult<()> {
        match self.store.schedule_delete(ws, id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AppError::not_found("schedule not found")),
            Err(e) => Err(AppError::internal("failed to delete schedule")(e)),
        }
    }

    /// `POST …/run`: fires now through the same path as the scheduler
    /// (the reference only echoed the prompt). Does not move `next_run_at`.
    pub async fn schedule_run_now(&self, ws: Uuid, id: Uuid) -> AppResult<Value> {
        let row = self.schedule_row(ws, id).await?;
        let answer = json!({ "status": "fired", "workspace_id": ws, "prompt": row.prompt });
        self.cron_dispatch(row, Trigger::RunNow, Utc::now()).await;
        Ok(answer)
    }

    pub async fn schedule_history(&self, ws: Uuid, id: Uuid) -> AppResult<Vec<Value>> {
        self.schedule_row(ws, id).await?;
        let rows = self
            .store
            .activity_cron_history(ws, id, HISTORY_LIMIT)
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                json!({
                    "timestamp": r.created_at,
                    "duration_ms": r.duration_ms,
                    "status": r.status,
                    "error_detail": r.error_detail,
                    "request": r.request_body,
                })
            })
            .collect())
    }

    /// `GET /workspaces/:id/schedules/health`: no workspace auth; the caller
    /// names itself in `X-Workspace-ID` and must be allowed to talk to `ws`.
    pub async fn schedule_health(
        &self,
        ws: Uuid,
        caller: Option<&str>,
        bearer: Option<&str>,
    ) -> AppResult<Vec<Value>> {
        let caller =
            caller.ok_or_else(|| AppError::unauthenticated("X-Workspace-ID header required"))?;
        if molecule_types::is_system_caller(caller) {
            // A self-declared system identity is only trusted from an
            // operator in production.
            if self.config.mode == crate::config::Mode::Production {
                self.auth_admin(bearer)?;
            }
        } else {
            let caller: Uuid = caller
                .parse()
                .map_err(|_| AppError::invalid("X-Workspace-ID must be a workspace UUID"))?;
            self.auth_lazy(caller, bearer, "caller").await?;
            if caller != ws && !self.hierarchy.can_communicate(caller, ws).await {
                return Err(AppError::forbidden("access denied"));
            }
        }
        let rows = self
            .store
            .schedule_list(ws)
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.id, "name": r.name, "enabled": r.enabled,
                    "last_run_at": r.last_run_at, "next_run_at": r.next_run_at,
                    "run_count": r.run_count, "last_status": r.last_status,
                    "last_error": r.last_error,
                })
            })
            .collect())
    }

    /// One scheduler activation: claim every due schedule and dispatch it.
    /// Returns how many runs this process claimed.
    pub async fn scheduler_tick(&self) -> AppResult<usize> {
        self.cron_in_flight.reap();
        let now = Utc::now();
        let due = self
            .store
            .schedule_list_due(now, DUE_PER_TICK)
            .await
            .map_err(AppError::internal("query failed"))?;
        let mut claimed = 0;
        for row in due {
            let Some(seen) = row.next_run_at else {
                continue;
            };
            // Missed-run policy: the next run is computed from now, so a
            // schedule overdue by many periods fires once. An expression
            // that no longer parses gets no next run (it stops).
            let next = CronSchedule::parse(&row.cron_expr, &row.timezone)
                .ok()
                .and_then(|c| c.next_after(now));
            match self.store.schedule_claim(row.id, seen, next, now).await {
                Ok(true) => {
                    claimed += 1;
                    self.cron_dispatch(row, Trigger::Tick, now).await;
                }
                Ok(false) => {
                    tracing::debug!(schedule_id = %row.id, "schedule claimed by another scheduler");
                }
                Err(e) => {
                    tracing::warn!(schedule_id = %row.id, error = %e, "schedule claim failed");
                }
            }
        }
        Ok(claimed)
    }

    /// Skip (busy workspace, previous run in flight) or start a fire job
    /// for a claimed run. The in-flight marker lives in the database
    /// (`schedule_begin_run`), so the overlap policy holds across replicas.
    async fn cron_dispatch(&self, row: ScheduleRow, trigger: Trigger, now: DateTime<Utc>) {
        let active = match self.store.workspace_get(row.workspace_id).await {
            Ok(Some(ws)) => self.view(ws).active_tasks,
            _ => 0,
        };
        if active > 0 {
            self.cron_skipped(
                &row,
                now,
                format!("skipped: workspace busy (active_tasks={active})"),
                json!({ "active_tasks": active }),
            )
            .await;
            return;
        }
        let stale_before = now
            - chrono::Duration::from_std(FIRE_TIMEOUT + ABANDONED_AFTER)
                .unwrap_or(chrono::Duration::minutes(6));
        match self
            .store
            .schedule_begin_run(row.id, now, stale_before)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                self.cron_skipped(
                    &row,
                    now,
                    "skipped: previous run still in flight".into(),
                    json!({}),
                )
                .await;
                return;
            }
            Err(e) => {
                tracing::warn!(schedule_id = %row.id, error = %e, "cannot mark the run in flight; not fired");
                return;
            }
        }
        let app = self.clone();
        let slots = self.cron_in_flight.slots.clone();
        let Ok(mut jobs) = self.cron_in_flight.jobs.lock() else {
            return;
        };
        jobs.spawn(async move {
            let _permit = slots.acquire_owned().await;
            app.cron_fire(&row, trigger, now).await;
        });
    }

    async fn cron_skipped(
        &self,
        row: &ScheduleRow,
        now: DateTime<Utc>,
        reason: String,
        extra: Value,
    ) {
        let result = ScheduleRunResult {
            status: "skipped".into(),
            error: reason.clone(),
            started_at: now,
            at: now,
        };
        if let Err(e) = self.store.schedule_record_skip(row.id, &result).await {
            tracing::warn!(schedule_id = %row.id, error = %e, "cannot record skipped run");
        }
        let mut request = json!({
            "schedule_id": row.id,
            "schedule_name": row.name,
            "cron_expr": row.cron_expr,
            "skipped": true,
            "reason": reason,
        });
        if let (Some(r), Value::Object(x)) = (request.as_object_mut(), extra) {
            r.extend(x);
        }
        let mut act = NewActivity::new(row.workspace_id, "cron_run");
        act.method = Some("cron".into());
        act.summary = Some(format!("Cron skipped: {}", row.name));
        act.request_body = Some(request);
        act.status = "skipped".into();
        act.error_detail = Some(reason.clone());
        self.record_activity(act);
        tracing::info!(schedule_id = %row.id, workspace_id = %row.workspace_id, %reason, "schedule run skipped");
        self.events
            .emit(Event::new(
                EventType::CronSkipped,
                row.workspace_id,
                json!({ "schedule_id": row.id, "schedule_name": row.name, "reason": reason }),
            ))
            .await;
    }

    async fn cron_fire(&self, row: &ScheduleRow, trigger: Trigger, started: DateTime<Utc>) {
        let message_id = format!(
            "cron-{}-{}",
            &row.id.simple().to_string()[..8],
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let clock = std::time::Instant::now();
        let outcome = self
            .a2a_message(
                row.workspace_id,
                Caller::Canvas,
                &row.prompt,
                message_id,
                FIRE_TIMEOUT,
            )
            .await;
        let duration_ms = clock.elapsed().as_millis() as i64;
        let (status, error) = match outcome {
            Ok(reply) if reply.is_success() => ("ok", String::new()),
            Ok(reply) => ("error", format!("HTTP {}", reply.status)),
            Err(e) => ("error", e.to_string()),
        };
        let result = ScheduleRunResult {
            status: status.into(),
            error: error.clone(),
            started_at: started,
            at: Utc::now(),
        };
        if let Err(e) = self.store.schedule_record_run(row.id, &result).await {
            tracing::warn!(schedule_id = %row.id, error = %e, "cannot record run");
        }
        let mut act = NewActivity::new(row.workspace_id, "cron_run");
        act.method = Some("cron".into());
        act.summary = Some(format!("Cron: {}", row.name));
        act.request_body = Some(json!({
            "schedule_id": row.id,
            "schedule_name": row.name,
            "cron_expr": row.cron_expr,
            "prompt": truncate_chars(&row.prompt, 200),
            "trigger": match trigger { Trigger::Tick => "schedule", Trigger::RunNow => "run_now" },
        }));
        act.status = status.into();
        act.error_detail = (!error.is_empty()).then(|| error.clone());
        act.duration_ms = Some(duration_ms);
        self.record_activity(act);
        tracing::info!(schedule_id = %row.id, workspace_id = %row.workspace_id, status, "schedule fired");
        self.metrics
            .inc("molecule_cron_runs_total", &[("status", status)]);
        self.events
            .emit(Event::new(
                EventType::CronExecuted,
                row.workspace_id,
                json!({ "schedule_id": row.id, "schedule_name": row.name, "status": status }),
            ))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_truncation_respects_characters() {
        let p = "é".repeat(300);
        assert_eq!(truncate_chars(&p, 200).chars().count(), 200);
    }
}
