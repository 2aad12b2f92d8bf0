//! The scheduler (subsystems §4): a background task that claims due
//! schedules and fires them through the A2A proxy path
//! ([`App::a2a_message`], caller `Canvas`, 5-min deadline).
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
use molecule_store::{NewActivity, ScheduleRow, ScheduleRunResult};
use molecule_types::{ActivityType, Event, EventType, RunStatus};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

use crate::app::App;
use crate::app::a2a::Caller;
use crate::app::resources::cron::CronSchedule;
use crate::error::{AppError, AppResult};

/// Due schedules handled per tick.
pub const DUE_PER_TICK: i64 = 50;
/// Fires running at once in this process.
pub const PARALLEL_FIRES: usize = 10;
/// The A2A deadline of one fire.
pub const FIRE_TIMEOUT: Duration = Duration::from_secs(300);
/// A run marked in flight longer than this (plus the fire timeout) was
/// abandoned (its process died) and no longer blocks the next run.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// A fire job: the schedule and the time its run was claimed.
pub type FireKey = (Uuid, DateTime<Utc>);

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Tick,
    RunNow,
}

fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl App {
    /// One scheduler activation: claim every due schedule and dispatch it.
    /// Returns how many runs this process claimed.
    pub async fn scheduler_tick(&self) -> AppResult<usize> {
        self.cron_jobs.reap();
        let now = self.now();
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
    pub(crate) async fn cron_dispatch(
        &self,
        row: ScheduleRow,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) {
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
        self.cron_jobs.launch((row.id, now), async move {
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
            status: RunStatus::Skipped,
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
        let mut act = NewActivity::new(row.workspace_id, ActivityType::CronRun);
        act.method = Some("cron".into());
        act.summary = Some(format!("Cron skipped: {}", row.name));
        act.request_body = Some(request);
        act.status = "skipped".into();
        act.error_detail = Some(reason.clone());
        tracing::info!(schedule_id = %row.id, workspace_id = %row.workspace_id, %reason, "schedule run skipped");
        // The event is on record before the (queued) history row can be.
        self.events
            .emit(Event::new(
                EventType::CronSkipped,
                row.workspace_id,
                json!({ "schedule_id": row.id, "schedule_name": row.name, "reason": reason }),
            ))
            .await;
        self.record_activity(act);
    }

    async fn cron_fire(&self, row: &ScheduleRow, trigger: Trigger, started: DateTime<Utc>) {
        let message_id = format!(
            "cron-{}-{}",
            &row.id.simple().to_string()[..8],
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let clock = std::time::Instant::now();
        let mut span = self.telemetry.start(
            "schedule.fire",
            molecule_telemetry::SpanKind::Internal,
            None,
        );
        span.set_attribute("molecule.schedule_id", row.id);
        span.set_attribute("molecule.workspace_id", row.workspace_id);
        let outcome = self
            .a2a_message(
                row.workspace_id,
                Caller::Canvas,
                &row.prompt,
                message_id,
                FIRE_TIMEOUT,
                span.context(),
            )
            .await;
        match &outcome {
            Ok(reply) if reply.is_success() => {}
            Ok(reply) => span.set_error(format!("HTTP {}", reply.status)),
            Err(e) => span.set_error(e.detail()),
        }
        span.end();
        let duration_ms = clock.elapsed().as_millis() as i64;
        let (status, error) = match outcome {
            Ok(reply) if reply.is_success() => (RunStatus::Ok, String::new()),
            Ok(reply) => (RunStatus::Error, format!("HTTP {}", reply.status)),
            Err(e) => (RunStatus::Error, e.to_string()),
        };
        let result = ScheduleRunResult {
            status,
            error: error.clone(),
            started_at: started,
            at: self.now(),
        };
        if let Err(e) = self.store.schedule_record_run(row.id, &result).await {
            tracing::warn!(schedule_id = %row.id, error = %e, "cannot record run");
        }
        let mut act = NewActivity::new(row.workspace_id, ActivityType::CronRun);
        act.method = Some("cron".into());
        act.summary = Some(format!("Cron: {}", row.name));
        act.request_body = Some(json!({
            "schedule_id": row.id,
            "schedule_name": row.name,
            "cron_expr": row.cron_expr,
            "prompt": truncate_chars(&row.prompt, 200),
            "trigger": match trigger { Trigger::Tick => "schedule", Trigger::RunNow => "run_now" },
        }));
        act.status = status.to_string();
        act.error_detail = (!error.is_empty()).then(|| error.clone());
        act.duration_ms = Some(duration_ms);
        tracing::info!(schedule_id = %row.id, workspace_id = %row.workspace_id, status = status.as_str(), "schedule fired");
        self.metrics
            .inc("molecule_cron_runs_total", &[("status", status.as_str())]);
        // The event is on record before the (queued) history row can be.
        self.events
            .emit(Event::new(
                EventType::CronExecuted,
                row.workspace_id,
                json!({ "schedule_id": row.id, "schedule_name": row.name, "status": status }),
            ))
            .await;
        self.record_activity(act);
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
