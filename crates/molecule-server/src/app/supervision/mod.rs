//! Liveness judgements that involve a runtime: the periodic health sweep,
//! TTL expiry confirmed by inspect, and the reactive check the A2A proxy
//! calls when an agent does not answer. Every path ends in
//! [`App::workspace_gone`], which asks the restart governor; nothing else
//! restarts a workspace. `Unknown` observations never change anything.
//! Also the heartbeat-only judgements: TTL expiry for workspaces without a
//! runtime, external staleness, seeding deadlines at start, and the
//! coalesced heartbeat writes.

pub mod governor;
pub mod liveness;

use futures_util::StreamExt;
use molecule_provisioner::Observation;
use molecule_types::{Event, EventType, RestartDecision, Transition, WorkspaceStatus};
use serde_json::json;
use std::time::Instant;
use uuid::Uuid;

use crate::app::App;
use crate::app::supervision::governor::{Decision, SweepVerdict};
use crate::app::workspaces::lifecycle::PROVISIONER_TASK;
use crate::error::{AppError, AppResult};

/// Name of the background task that inspects the running containers and
/// trips or resets the fleet breaker.
pub const HEALTH_SWEEP_TASK: &str = "health-sweep";

/// When a workspace whose deadline passed could not be judged is judged
/// again.
const JUDGE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

fn describe(obs: &Observation) -> String {
    match obs {
        Observation::Running => "container running".into(),
        Observation::Exited { code: Some(c) } => format!("container exited with code {c}"),
        Observation::Exited { code: None } => "container exited".into(),
        Observation::NotFound => "container not found".into(),
        Observation::Unknown(e) => format!("container state unknown ({e})"),
    }
}

/// What a health sweep listed of a workspace: its observation stands only
/// for this runtime. Any write moves `updated_at` (a status, a url, a
/// heartbeat), so a row read again unchanged is the one inspected.
#[derive(PartialEq)]
struct Incarnation {
    status: WorkspaceStatus,
    url: Option<String>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl Incarnation {
    fn of(r: &molecule_store::WorkspaceRow) -> Self {
        Self {
            status: r.status,
            url: r.url.clone(),
            updated_at: r.updated_at,
        }
    }
}

impl App {
    /// Whether the fleet breaker holds automatic restarts back.
    pub fn breaker_open(&self) -> bool {
        self.governor.lock().is_ok_and(|g| g.is_frozen())
    }

    fn count_unknown(&self, id: Uuid, source: &'static str, err: &str) {
        self.metrics
            .inc("molecule_inspect_unknown_total", &[("source", source)]);
        tracing::warn!(workspace_id = %id, source, error = %err, "inspect failed: state unknown, assuming alive");
    }

    /// A workspace's runtime is definitely gone: ask the governor.
    pub async fn workspace_gone(&self, id: Uuid, reason: &str) {
        if self.gone_elsewhere(id, reason).await {
            return;
        }
        let decision = match self.governor.lock() {
            Ok(mut g) => g.request(id, Instant::now()),
            Err(_) => return,
        };
        match decision {
            Decision::Restart { delay, attempt } => {
                self.restarting_everywhere(id);
                let _ = self.mark_offline(id, reason).await;
                self.restart_queue
                    .schedule(id, Instant::now() + delay, reason.to_string());
                self.decision(
                    id,
                    RestartDecision::Restart,
                    reason,
                    json!({ "attempt": attempt, "delay_seconds": delay.as_secs_f64() }),
                )
                .await;
                self.tasks.activate(PROVISIONER_TASK);
            }
            Decision::AlreadyRestarting => {}
            Decision::GiveUp { reason: why } => {
                let _ = self.mark_offline(id, reason).await;
                self.decision(
                    id,
                    RestartDecision::GiveUp,
                    &why,
                    json!({ "trigger": reason }),
                )
                .await;
                self.fail(id, &why).await;
            }
            Decision::Frozen => {
                self.decision(
                    id,
                    RestartDecision::Frozen,
                    &format!("fleet breaker open; not restarting ({reason})"),
                    json!({}),
                )
                .await;
            }
        }
    }

    /// A heartbeat deadline passed. External workspaces (or a platform
    /// without a runtime backend) go offline; container workspaces are
    /// confirmed by inspect first.
    pub async fn heartbeat_expired(&self, id: Uuid) -> AppResult<()> {
        let ttl = self.config.liveness_ttl.as_secs_f64();
        let Some(row) = self
            .store
            .workspace_get(id)
            .await
            .map_err(AppError::internal("lookup failed"))?
        else {
            return Ok(());
        };
        if !row.status.is_live() {
            return Ok(());
        }
        // Another replica may have heard it (replicas share the row, not
        // their deadlines): judge from the last heartbeat anyone recorded.
        if let Some(heard) = row
            .last_heartbeat_at
            .and_then(|at| (self.now() - at).to_std().ok())
            .filter(|heard| *heard < self.config.liveness_ttl)
        {
            self.liveness.touch(id, self.config.liveness_ttl - heard);
            return Ok(());
        }
        let Some(prov) = self
            .provisioner
            .clone()
            .filter(|_| !row.runtime.is_external())
        else {
            self.mark_offline(id, &format!("no heartbeat for {ttl} s (liveness TTL)"))
                .await?;
            return Ok(());
        };
        match prov.inspect(id).await {
            obs if obs.is_gone() => {
                self.workspace_gone(
                    id,
                    &format!("no heartbeat for {ttl} s and {}", describe(&obs)),
                )
                .await
            }
            Observation::Unknown(e) => {
                self.count_unknown(id, "ttl", &e);
                self.liveness.touch(id, self.config.liveness_ttl);
            }
            _ => {
                let reason =
                    format!("no heartbeat for {ttl} s but the container is running: keeping it");
                self.decision(id, RestartDecision::Keep, &reason, json!({}))
                    .await;
                self.liveness.touch(id, self.config.liveness_ttl);
            }
        }
        Ok(())
    }

    /// One activation of the health sweep: inspect every started container
    /// workspace, feed the fleet breaker, hand the gone ones to the governor.
    pub async fn health_sweep(&self) -> AppResult<()> {
        let Some(prov) = self.provisioner.clone() else {
            return Ok(());
        };
        let rows = self
            .store
            .workspace_list_by_status(&[
                WorkspaceStatus::Online,
                WorkspaceStatus::Degraded,
                WorkspaceStatus::Provisioning,
            ])
            .await
            .map_err(AppError::internal("query failed"))?;
        // Provisioning rows count once their runtime started (url set): a
        // runtime that dies before registering is a crash like any other.
        let started = |r: &molecule_store::WorkspaceRow| {
            r.status != WorkspaceStatus::Provisioning || !r.url.as_deref().unwrap_or("").is_empty()
        };
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|r| !r.runtime.is_external() && started(r))
            .collect();
        let listed: std::collections::HashMap<Uuid, Incarnation> =
            rows.iter().map(|r| (r.id, Incarnation::of(r))).collect();
        let observed: Vec<(Uuid, Observation)> = futures_util::stream::iter(rows)
            .map(|r| {
                let p = prov.clone();
                async move { (r.id, p.inspect(r.id).await) }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut inspected = 0;
        let mut gone = Vec::new();
        for (id, obs) in observed {
            match obs {
                Observation::Unknown(e) => self.count_unknown(id, "sweep", &e),
                o if o.is_gone() => {
                    inspected += 1;
                    gone.push((id, o));
                }
                _ => inspected += 1,
            }
        }
        let verdict = match self.governor.lock() {
            Ok(mut g) => g.sweep(inspected, gone.len()),
            Err(_) => return Ok(()),
        };
        match verdict {
            SweepVerdict::Trip { reason } => {
                self.breaker_everywhere(true);
                self.metrics.inc("molecule_fleet_breaker_trips_total", &[]);
                tracing::error!(reason, "fleet breaker tripped");
                self.events.emit(Event { event_type: EventType::FleetBreakerTripped, workspace_id: None, payload: json!({ "reason": reason, "gone": gone.len(), "inspected": inspected }) }).await;
                return Ok(());
            }
            SweepVerdict::StillFrozen => return Ok(()),
            SweepVerdict::Reset { reason } => {
                self.breaker_everywhere(false);
                tracing::warn!(reason, "fleet breaker reset");
                self.events
                    .emit(Event {
                        event_type: EventType::FleetBreakerReset,
                        workspace_id: None,
                        payload: json!({ "reason": reason }),
                    })
                    .await;
            }
            SweepVerdict::Proceed => {}
        }
        for (id, obs) in gone {
            // Act only if nothing changed the workspace since it was listed
            // (an operator restart or pause also makes the runtime vanish,
            // and the restart's new runtime may be up by now: the
            // observation was of the old one).
            let still = self.store.workspace_get(id).await.ok().flatten();
            if still.is_some_and(|r| listed.get(&id) == Some(&Incarnation::of(&r))) {
                self.workspace_gone(id, &format!("health sweep: {}", describe(&obs)))
                    .await;
            }
        }
        Ok(())
    }

    /// Reactive check for the A2A proxy after a transport error: gone →
    /// governed restart (returns true: "restarting"); running or unknown →
    /// false (the agent is busy or we cannot tell).
    pub async fn reactive_check(&self, id: Uuid) -> bool {
        let Some(prov) = self.provisioner.clone() else {
            return false;
        };
        match prov.inspect(id).await {
            obs if obs.is_gone() => {
                self.workspace_gone(id, &format!("agent unreachable and {}", describe(&obs)))
                    .await;
                true
            }
            Observation::Unknown(e) => {
                self.count_unknown(id, "a2a", &e);
                false
            }
            _ => false,
        }
    }

    /// Mark `id` offline (when it is online or degraded) and record why.
    pub async fn mark_offline(&self, id: Uuid, reason: &str) -> AppResult<bool> {
        let changed = self
            .store
            .workspace_transition(id, Transition::LOST, Some(reason), self.now())
            .await
            .map_err(AppError::internal("failed to update"))?;
        self.status_written(id);
        if changed {
            self.urls.clear(id);
            self.metrics.inc("molecule_workspace_offline_total", &[]);
            tracing::info!(workspace_id = %id, reason, "workspace offline");
            self.events
                .emit(Event::new(
                    EventType::WorkspaceOffline,
                    id,
                    json!({ "reason": reason }),
                ))
                .await;
        }
        Ok(changed)
    }

    /// One activation of the liveness task: workspaces whose heartbeat
    /// deadline passed are judged (see `supervision`).
    /// A workspace that could not be judged (the database did not answer)
    /// is judged again [`JUDGE_RETRY`] later: not knowing is not a verdict,
    /// and its deadline is not dropped.
    pub async fn expire_heartbeats(&self) -> AppResult<usize> {
        let expired = self.liveness.take_expired(Instant::now());
        let n = expired.len();
        let mut failed = None;
        for id in expired {
            if let Err(e) = self.heartbeat_expired(id).await {
                self.liveness.set_deadline(id, Instant::now() + JUDGE_RETRY);
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(n), Err)
    }

    /// One activation of the external-staleness task.
    pub async fn expire_stale_external(&self) -> AppResult<usize> {
        let stale_after = self.config.remote_stale_after;
        let before = self.now() - chrono::Duration::from_std(stale_after).unwrap_or_default();
        let rows = self
            .store
            .workspace_list_stale_external(before)
            .await
            .map_err(AppError::internal("query failed"))?;
        let reason = format!(
            "external agent silent for more than {} s",
            stale_after.as_secs_f64()
        );
        let mut n = 0;
        for row in rows {
            if self
                .heartbeats
                .pending(row.id)
                .is_some_and(|p| p.at >= before)
            {
                continue;
            }
            if self.mark_offline(row.id, &reason).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Seed heartbeat deadlines after a start: every live workspace gets a
    /// full TTL, because the platform being down is no evidence that an
    /// agent died.
    pub async fn seed_liveness(&self) -> AppResult<()> {
        for id in self.judged_workspaces().await? {
            self.liveness.touch(id, self.config.liveness_ttl);
        }
        Ok(())
    }

    /// After notes from the other replicas may have been lost: judge every
    /// live workspace, keeping the deadlines already set (a workspace whose
    /// `workspace` note was missed would otherwise never be judged here).
    pub(crate) async fn rewatch_liveness(&self) -> AppResult<usize> {
        let ids = self.judged_workspaces().await?;
        for id in &ids {
            self.liveness.watch(*id, self.config.liveness_ttl);
        }
        Ok(ids.len())
    }

    /// The workspaces liveness judges: online or degraded, with a runtime
    /// the platform runs (external agents go by staleness instead).
    async fn judged_workspaces(&self) -> AppResult<Vec<Uuid>> {
        let rows = self
            .store
            .workspace_list_by_status(&[WorkspaceStatus::Online, WorkspaceStatus::Degraded])
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows
            .iter()
            .filter(|r| !r.runtime.is_external())
            .map(|r| r.id)
            .collect())
    }

    /// Write buffered heartbeat statistics in one batch.
    pub async fn flush_heartbeats(&self) -> AppResult<usize> {
        let batch = self.heartbeats.take(self.now());
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        if let Err(e) = self.store.workspace_heartbeat_many(&batch).await {
            self.heartbeats.restore(batch);
            return Err(AppError::internal("heartbeat flush failed")(e));
        }
        Ok(n)
    }
}
