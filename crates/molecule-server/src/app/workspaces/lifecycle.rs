//! Workspaces that really run: provisioning through the [`Provisioner`],
//! operator actions (restart, pause, resume) and the restarts the governor
//! grants. Handlers change desired state (status `provisioning`, url `''`)
//! and activate the `provisioner` task; that task's activation
//! ([`App::provision_pending`]) performs due restarts and starts every
//! workspace that should run but has no runtime yet.

use molecule_provisioner::{DirAccess, Provisioner, WorkspaceSpec};
use molecule_store::{Seed, WorkspaceRow};
use molecule_types::{
    Event, EventType, RestartDecision, Transition, WorkspaceStatus, container_name,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use uuid::Uuid;

use crate::app::App;
use crate::error::{AppError, AppResult};

/// Name of the background task that provisions and restarts.
pub const PROVISIONER_TASK: &str = "provisioner";
/// At most this many workspaces are started at once.
pub const PARALLEL_STARTS: usize = 16;

/// Restarts granted by the governor, waiting for their backoff to pass.
#[derive(Clone, Default)]
pub struct RestartQueue {
    due: Arc<Mutex<HashMap<Uuid, (Instant, String)>>>,
}

impl RestartQueue {
    pub fn schedule(&self, id: Uuid, at: Instant, reason: String) {
        if let Ok(mut d) = self.due.lock() {
            d.insert(id, (at, reason));
        }
    }
    fn take_due(&self, now: Instant) -> Vec<(Uuid, String)> {
        let Ok(mut d) = self.due.lock() else {
            return Vec::new();
        };
        let ready: Vec<Uuid> = d
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(id, _)| *id)
            .collect();
        ready
            .into_iter()
            .filter_map(|id| d.remove(&id).map(|(_, r)| (id, r)))
            .collect()
    }
    pub fn cancel(&self, id: Uuid) {
        if let Ok(mut d) = self.due.lock() {
            d.remove(&id);
        }
    }
}

impl App {
    pub fn provisioner(&self) -> AppResult<&Arc<dyn Provisioner>> {
        self.provisioner
            .as_ref()
            .ok_or(AppError::Unavailable("provisioner not available"))
    }

    /// Record a lifecycle decision: an event with its reason, a metric, a log line.
    pub async fn decision(&self, id: Uuid, decision: RestartDecision, reason: &str, extra: Value) {
        self.metrics.inc(
            "molecule_restart_decisions_total",
            &[("decision", decision.as_str())],
        );
        tracing::info!(workspace_id = %id, decision = decision.as_str(), reason, "lifecycle decision");
        let mut payload = json!({ "decision": decision, "reason": reason });
        if let (Some(p), Value::Object(extra)) = (payload.as_object_mut(), extra) {
            p.extend(extra);
        }
        self.events
            .emit(Event::new(EventType::WorkspaceRestartDecision, id, payload))
            .await;
    }

    /// One activation of the provisioner task.
    pub async fn provision_pending(&self) -> AppResult<()> {
        let Some(prov) = self.provisioner.clone() else {
            return Ok(());
        };
        for (id, reason) in self.restart_queue.take_due(Instant::now()) {
            if let Err(e) = self.begin_restart(&prov, id, &reason).await {
                tracing::warn!(workspace_id = %id, error = %e, "restart could not begin");
                self.governor_finished(id);
            }
        }
        let rows = self
            .store
            .workspace_list_by_status(&[WorkspaceStatus::Provisioning])
            .await
            .map_err(AppError::internal("query failed"))?;
        let pending: Vec<WorkspaceRow> = rows
            .into_iter()
            .filter(|r| !r.runtime.is_external() && r.url.as_deref().unwrap_or("").is_empty())
            .collect();
        // Starts run as jobs owned by this task: an activation launches what
        // is pending and returns, so a workspace created a moment later does
        // not wait for a whole batch. A start already running is not
        // launched twice; a panicking job is logged and its workspace is
        // tried again.
        self.provision_jobs.reap();
        for row in pending {
            let (app, prov) = (self.clone(), prov.clone());
            let id = row.id;
            self.provision_jobs.launch(id, async move {
                app.provision_one(&prov, row).await;
            });
        }
        Ok(())
    }

    async fn provision_one(&self, prov: &Arc<dyn Provisioner>, row: WorkspaceRow) {
        let id = row.id;
        let started_at = Instant::now();
        let epoch = self.provision_epoch(id);
        // The files its /configs still has to receive (a new workspace, or
        // a restart that asked for a template); none = the volume as it is.
        let seed = match self.store.seed_get(id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(workspace_id = %id, error = %e, "seed read failed; provisioning will retry");
                return;
            }
        };
        let mut span = self.telemetry.start(
            "workspace.provision",
            molecule_telemetry::SpanKind::Internal,
            None,
        );
        span.set_attribute("molecule.workspace_id", id);
        span.set_attribute("molecule.runtime", row.runtime.as_str());
        span.set_attribute("molecule.backend", prov.kind());
        // (error text, whether it is only "the backend did not answer")
        let result = match self.workspace_spec(prov.kind(), &row, seed.as_ref()).await {
            Ok(spec) => prov.ensure(&spec).await.map_err(|e| {
                let transient = matches!(e, molecule_provisioner::ProvisionError::Unavailable(_));
                (e.to_string(), transient)
            }),
            Err(e) => Err((e.to_string(), false)),
        };
        if let Err((error, _)) = &result {
            span.set_error(error);
        }
        span.end();
        // From here to the end, a restart of this workspace waits.
        let _gate = self.start_gate(id).lock_owned().await;
        if self.provision_epoch(id) != epoch {
            // An operator restarted it while this start ran: that restart
            // owns the workspace now (it removed what this start made, or
            // its own start adopts it). Nothing here is written; the
            // provisioner looks again.
            tracing::info!(workspace_id = %id, "start superseded by a restart; its result is dropped");
            self.governor_finished(id);
            self.tasks.activate(PROVISIONER_TASK);
            return;
        }
        match result {
            Ok(started) => {
                if let Some(seed) = &seed {
                    self.seed_written(prov, id, seed, started.adopted).await;
                }
                // An operator may have paused or deleted the workspace while
                // it was starting: then the fresh runtime must not survive.
                let current = self.current_status(id).await;
                if matches!(
                    current,
                    None | Some(WorkspaceStatus::Removed | WorkspaceStatus::Paused)
                ) {
                    let _ = prov
                        .remove(id, current.is_none_or(|s| s == WorkspaceStatus::Removed))
                        .await;
                    self.governor_finished(id);
                    return;
                }
                let now = self.now();
                let _ = self.store.workspace_set_url(id, &started.url, now).await;
                // The agent may have registered before this write.
                self.forget_target(id);
                self.conformance_url_known(id);
                self.urls.set_internal(
                    id,
                    started
                        .internal_url
                        .clone()
                        .unwrap_or_else(|| started.url.clone()),
                );
                let reason = "runtime started; waiting for the agent to register";
                let _ = self
                    .store
                    .workspace_transition(id, Transition::PROVISIONING_PROGRESS, Some(reason), now)
                    .await;
                self.status_written(id);
                self.metrics.add(
                    "molecule_provision_seconds_total",
                    &[],
                    started_at.elapsed().as_secs_f64(),
                );
                self.metrics.inc(
                    "molecule_provisions_total",
                    &[(
                        "result",
                        if started.adopted {
                            "adopted"
                        } else {
                            "started"
                        },
                    )],
                );
                tracing::info!(workspace_id = %id, url = %started.url, adopted = started.adopted, "workspace runtime up");
            }
            Err((error, transient)) => {
                self.metrics
                    .inc("molecule_provisions_total", &[("result", "failed")]);
                self.governor_finished(id);
                let current = self.current_status(id).await;
                if current != Some(WorkspaceStatus::Provisioning) {
                    // The agent registered meanwhile (or an operator acted):
                    // a late error about starting it concludes nothing.
                    tracing::warn!(workspace_id = %id, error = %error, "provisioning error after the workspace moved on; ignored");
                    return;
                }
                if transient {
                    // Unknown, not failed: the next activation tries again
                    // (the write below makes it another generation, so a
                    // runtime this attempt did start is replaced); the
                    // watchdog bounds how long.
                    tracing::warn!(workspace_id = %id, error = %error, "runtime backend did not answer; will retry");
                    // The operator sees why it is still provisioning.
                    let reason =
                        format!("starting the runtime did not succeed ({error}); retrying");
                    let _ = self
                        .store
                        .workspace_transition(
                            id,
                            Transition::PROVISIONING_PROGRESS,
                            Some(&reason),
                            self.now(),
                        )
                        .await;
                    self.status_written(id);
                    return;
                }
                // A runtime that started and died at once crashed: that is
                // the governor's call (backoff, crash loop), not a plain failure.
                if let molecule_provisioner::Observation::Exited { .. } = prov.inspect(id).await {
                    self.workspace_gone(id, &format!("runtime exited right after start ({error})"))
                        .await;
                } else {
                    self.fail(id, &error).await;
                }
                return;
            }
        }
        self.governor_finished(id);
    }

    fn provision_epoch(&self, id: Uuid) -> u64 {
        self.provision_epochs
            .lock()
            .map(|m| m.get(&id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn start_gate(&self, id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        match self.start_gates.lock() {
            Ok(mut m) => m.entry(id).or_default().clone(),
            // A poisoned map cannot be trusted to serialise anything; a
            // fresh gate keeps the start going (the epoch still guards).
            Err(_) => Arc::default(),
        }
    }

    /// A start of `id` that is running now must not write its result.
    pub(crate) fn supersede_start(&self, id: Uuid) {
        if let Ok(mut m) = self.provision_epochs.lock() {
            *m.entry(id).or_insert(0) += 1;
        }
    }

    /// The status a workspace has now; `None` when it is gone or unreadable.
    pub(crate) async fn status_of(&self, id: Uuid) -> Option<WorkspaceStatus> {
        self.current_status(id).await
    }

    async fn current_status(&self, id: Uuid) -> Option<WorkspaceStatus> {
        self.store
            .workspace_get(id)
            .await
            .ok()
            .flatten()
            .map(|r| r.status)
    }

    /// Mark `id` failed with `reason` (from any status but removed/paused).
    pub async fn fail(&self, id: Uuid, reason: &str) {
        if let Ok(true) = self
            .store
            .workspace_transition(id, Transition::FAIL, Some(reason), self.now())
            .await
        {
            self.liveness.forget(id);
            self.status_written(id);
            tracing::warn!(workspace_id = %id, reason, "workspace failed");
            self.events
                .emit(Event::new(
                    EventType::WorkspaceProvisionFailed,
                    id,
                    json!({ "error": reason }),
                ))
                .await;
        }
    }

    /// The runtime started with `seed` in its /configs: the seed is spent.
    /// An adopted runtime (already running, so created before) did not
    /// receive the files at its start; they are written into it now.
    async fn seed_written(
        &self,
        prov: &Arc<dyn Provisioner>,
        id: Uuid,
        seed: &Seed,
        adopted: bool,
    ) {
        if adopted {
            let files: Vec<(String, Vec<u8>)> = seed
                .files
                .iter()
                .map(|(p, t)| (p.clone(), t.clone().into_bytes()))
                .collect();
            if let Err(e) = prov.write_files(id, &files).await {
                tracing::warn!(workspace_id = %id, error = %e, "seed files not written into the adopted runtime; kept for its next start");
                return;
            }
        }
        if let Err(e) = self.store.seed_clear(id, seed.created_at).await {
            tracing::warn!(workspace_id = %id, error = %e, "spent seed not cleared; it will be written again at the next start");
        }
    }

    async fn workspace_spec(
        &self,
        backend: &str,
        row: &WorkspaceRow,
        seed: Option<&Seed>,
    ) -> AppResult<WorkspaceSpec> {
        let token = self.issue_token(row.id).await?;
        let image = match backend {
            "local" => self
                .config
                .agent_program
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "molecule-agent".into()),
            _ => self.config.image_for(row.runtime.as_str()).to_string(),
        };
        // Secrets first (globals overridden by the workspace's own); the
        // platform's variables below win over a secret of the same name.
        let secrets = self.secret_env(row.id).await?;
        let mut env = vec![
            ("WORKSPACE_ID".to_string(), row.id.to_string()),
            ("WORKSPACE_NAME".to_string(), row.name.clone()),
            ("WORKSPACE_RUNTIME".to_string(), row.runtime.to_string()),
            ("WORKSPACE_TIER".to_string(), row.tier.to_string()),
            ("PLATFORM_URL".to_string(), self.agent_platform_url(backend)),
            ("MOLECULE_WORKSPACE_TOKEN".to_string(), token),
            (
                "HEARTBEAT_INTERVAL_SECONDS".to_string(),
                self.config.agent_heartbeat_every.as_secs_f64().to_string(),
            ),
            (
                "AWARENESS_NAMESPACE".to_string(),
                row.awareness_namespace
                    .clone()
                    .unwrap_or_else(|| format!("workspace:{}", row.id)),
            ),
        ];
        if backend == "docker" {
            env.push((
                "AGENT_URL".to_string(),
                format!("http://{}:8000", container_name(row.id)),
            ));
        }
        env.extend(self.config.workspace_env.iter().cloned());
        let platform: std::collections::HashSet<String> =
            env.iter().map(|(k, _)| k.clone()).collect();
        let mut env: Vec<(String, String)> = secrets
            .into_iter()
            .filter(|(k, _)| !platform.contains(k))
            .chain(env)
            .collect();
        env.shrink_to_fit();
        let workspace_dir = row.workspace_dir.as_ref().map(|d| {
            let access = if row.workspace_access == "read_only" {
                DirAccess::ReadOnly
            } else {
                DirAccess::ReadWrite
            };
            (std::path::PathBuf::from(d), access)
        });
        Ok(WorkspaceSpec {
            workspace_id: row.id,
            name: row.name.clone(),
            tier: row.tier,
            runtime: row.runtime.to_string(),
            image,
            env,
            config_files: seed
                .map(|s| {
                    s.files
                        .iter()
                        .map(|(path, text)| (path.clone(), text.clone().into_bytes()))
                        .collect()
                })
                .unwrap_or_default(),
            workspace_dir,
            // The row as the provisioner listed it: every restart, resume
            // or retry writes it before the next start lists it, and a
            // start writes it (its url) once its runtime runs. So a start
            // whose result was lost (its replica died) is adopted by the
            // next attempt, on any replica, and a previous runtime never
            // is. A write in between (a late heartbeat of the previous
            // runtime) only makes the next attempt replace, not adopt.
            generation: row
                .updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        })
    }

    fn agent_platform_url(&self, backend: &str) -> String {
        if let Some(u) = &self.config.platform_url {
            return u.clone();
        }
        let addrs = self
            .listen_addrs
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default();
        match (backend, addrs.gateway, addrs.main) {
            ("docker", Some(gw), _) => format!("http://{gw}"),
            (_, _, Some(main)) => format!("http://{main}"),
            _ => "http://127.0.0.1:8080".to_string(),
        }
    }

    /// A granted restart whose backoff passed: tear down, mark provisioning.
    async fn begin_restart(
        &self,
        prov: &Arc<dyn Provisioner>,
        id: Uuid,
        reason: &str,
    ) -> AppResult<()> {
        let row = self.workspace_row(id).await?;
        if matches!(
            row.status,
            WorkspaceStatus::Removed | WorkspaceStatus::Paused | WorkspaceStatus::Failed
        ) {
            self.governor_finished(id);
            return Ok(());
        }
        self.queue_restart_context(&row, reason);
        let reason = format!("restarting: {reason}");
        let restarted = self
            .reprovision(prov, &row, Transition::GOVERNED_RESTART, &reason)
            .await?;
        if !restarted {
            // Paused, failed or deleted since `row` was read (that wins),
            // or this replica lost the lead meanwhile (the new governor
            // decides).
            tracing::info!(workspace_id = %id, "granted restart dropped: the workspace moved on or this replica no longer governs restarts");
            self.governor_finished(id);
        }
        Ok(())
    }

    /// Mark `provisioning` through `transition` (a compare-and-set on the
    /// status), end the runtime ([`App::end_runtime`]: a sweep meanwhile
    /// sees a provisioning row without a url, not a crash) and raise
    /// `WORKSPACE_PROVISIONING`. Returns false, touching nothing, when the
    /// status no longer allowed `transition` (paused, failed or deleted
    /// meanwhile: whoever did that also stopped the runtime). A governed
    /// restart is written as the leader of [`PROVISIONER_TASK`], through
    /// the session that holds the lead: a replica that was stopped with
    /// the restart in hand, and lost the lead meanwhile, restarts nothing
    /// (the new governor decides).
    pub(crate) async fn reprovision(
        &self,
        prov: &Arc<dyn Provisioner>,
        row: &WorkspaceRow,
        transition: Transition,
        reason: &str,
    ) -> AppResult<bool> {
        let _gate = self.start_gate(row.id).lock_owned().await;
        self.supersede_start(row.id);
        let moved = if transition == Transition::GOVERNED_RESTART {
            self.store
                .workspace_transition_as_leader(
                    PROVISIONER_TASK,
                    row.id,
                    transition,
                    Some(reason),
                    self.now(),
                )
                .await
                .map_err(AppError::internal("failed to update"))?
                // Not the governor any more: nothing to write.
                .unwrap_or(false)
        } else {
            self.store
                .workspace_transition(row.id, transition, Some(reason), self.now())
                .await
                .map_err(AppError::internal("failed to update"))?
        };
        if !moved {
            return Ok(false);
        }
        self.end_runtime(prov, row.id, "before restarting").await?;
        self.events
            .emit(Event::new(
                EventType::WorkspaceProvisioning,
                row.id,
                json!({ "name": row.name, "tier": row.tier }),
            ))
            .await;
        Ok(true)
    }

    /// The runtime of `id` ends after a status write that says so (paused,
    /// provisioning again): its deadline and url go, the change is
    /// announced, then the runtime is removed (volumes kept; a failure is
    /// logged, `doing` says when). The status comes first so that a
    /// liveness judgement that sees the runtime gone re-reads a row that is
    /// not a crash, and a health sweep does not count a provisioning row
    /// without a url. A failure to clear the url is returned, after the
    /// removal. The provisioner (perhaps on another replica) may start the
    /// next runtime while the removal runs, or after a removal whose answer
    /// was lost: it replaces, never adopts, a runtime of another start
    /// (`WorkspaceSpec::generation`).
    pub(crate) async fn end_runtime(
        &self,
        prov: &Arc<dyn Provisioner>,
        id: Uuid,
        doing: &str,
    ) -> AppResult<()> {
        self.liveness.forget(id);
        self.urls.clear(id);
        let cleared = self.store.workspace_set_url(id, "", self.now()).await;
        self.status_written(id);
        if let Err(e) = prov.remove(id, false).await {
            tracing::warn!(workspace_id = %id, error = %e, "could not remove the runtime {doing}");
        }
        cleared
            .map(drop)
            .map_err(AppError::internal("failed to update"))
    }

    /// Remember to tell the agent, once it is back, why it was restarted.
    pub(crate) fn queue_restart_context(&self, row: &WorkspaceRow, reason: &str) {
        let mut keys: Vec<String> = [
            "AWARENESS_NAMESPACE",
            "HEARTBEAT_INTERVAL_SECONDS",
            "MOLECULE_WORKSPACE_TOKEN",
            "PLATFORM_URL",
            "WORKSPACE_ID",
            "WORKSPACE_NAME",
            "WORKSPACE_RUNTIME",
            "WORKSPACE_TIER",
        ]
        .iter()
        .map(|k| k.to_string())
        .collect();
        keys.extend(self.config.workspace_env.iter().map(|(k, _)| k.clone()));
        self.restart_contexts
            .queue(row.id, reason, row.last_heartbeat_at, keys);
    }

    pub(crate) fn governor_finished(&self, id: Uuid) {
        if let Ok(mut g) = self.governor.lock() {
            g.finished(id);
        }
    }

    /// One activation of the provisioning watchdog: a workspace whose runtime
    /// started but whose agent never registered is `failed`, with the reason.
    pub async fn provision_watchdog(&self) -> AppResult<usize> {
        if self.provisioner.is_none() {
            return Ok(0);
        }
        let timeout = self.config.provision_timeout;
        let cutoff = self.now() - chrono::Duration::from_std(timeout).unwrap_or_default();
        let rows = self
            .store
            .workspace_list_by_status(&[WorkspaceStatus::Provisioning])
            .await
            .map_err(AppError::internal("query failed"))?;
        let mut n = 0;
        for row in rows
            .into_iter()
            .filter(|r| !r.runtime.is_external() && r.updated_at < cutoff)
        {
            let reason = format!(
                "the agent did not register within {} s of provisioning",
                timeout.as_secs_f64()
            );
            self.decision(row.id, RestartDecision::Fail, &reason, json!({}))
                .await;
            self.fail(row.id, &reason).await;
            n += 1;
        }
        Ok(n)
    }

    /// At start: remove runtimes whose workspace is gone (orphans). Running
    /// runtimes of live workspaces are adopted as they are.
    pub async fn reap_orphans(&self) -> AppResult<usize> {
        let Some(prov) = self.provisioner.clone() else {
            return Ok(0);
        };
        let found = match prov.list().await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "could not list runtimes; orphan reaping skipped");
                return Ok(0);
            }
        };
        let mut n = 0;
        for (id, _) in found {
            let row = self
                .store
                .workspace_get(id)
                .await
                .map_err(AppError::internal("lookup failed"))?;
            if row.is_none_or(|r| r.status == WorkspaceStatus::Removed) {
                tracing::info!(workspace_id = %id, "removing orphaned runtime");
                if prov.remove(id, true).await.is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}
