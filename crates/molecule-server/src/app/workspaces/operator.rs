//! Operator actions on running workspaces (api-contract §5.3): restart,
//! pause and resume. Each changes desired state and activates the
//! `provisioner` task; an operator action also clears the governor's
//! crash-loop history for the workspaces it touches.

use molecule_store::WorkspaceRow;
use molecule_types::dto::{Paused, RestartRequest, Restarted, Resumed};
use molecule_types::{Event, EventType, Transition, WorkspaceStatus};
use serde_json::json;
use uuid::Uuid;

use crate::app::App;
use crate::app::auth::WorkspaceAccess;
use crate::app::workspaces::lifecycle::PROVISIONER_TASK;
use crate::error::{AppError, AppResult};

impl App {
    async fn ancestor_paused(&self, row: &WorkspaceRow) -> AppResult<Option<String>> {
        let mut parent = row.parent_id;
        for _ in 0..crate::app::auth::access::MAX_HOPS {
            let Some(p) = parent else { return Ok(None) };
            let prow = self.workspace_row(p).await?;
            if prow.status == WorkspaceStatus::Paused {
                return Ok(Some(prow.name));
            }
            parent = prow.parent_id;
        }
        Ok(None)
    }

    /// POST /workspaces/:id/restart — an operator restart. Accepts any
    /// status (it is also how a `failed` workspace is retried) and clears the
    /// crash-loop history.
    pub async fn workspace_restart(
        &self,
        access: WorkspaceAccess,
        req: RestartRequest,
    ) -> AppResult<Restarted> {
        let id = access.uuid();
        let row = self.live_workspace_row(id).await?;
        if let Some(name) = self.ancestor_paused(&row).await? {
            return Err(conflict_paused(&name));
        }
        // No runtime backend: nothing to restart (503) before any file is seeded.
        self.provisioner()?;
        // A template named (or the runtime's default one, asked for)
        // replaces the files of /configs at this start.
        let wanted = match req.template.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => Some(t.to_string()),
            _ if req.apply_template => Some(format!("{}-default", row.runtime)),
            _ => None,
        };
        let mut config_dir = "existing-volume".to_string();
        if let Some(name) = wanted {
            let named = req.template.is_some();
            match self.template(&name).await? {
                Some(t) => {
                    let mut files = t.files;
                    if !files.contains_key("config.yaml") {
                        files.insert(
                            "config.yaml".into(),
                            crate::app::content::templates::generated_config(
                                &row.name,
                                row.role.as_deref(),
                                None,
                                row.tier,
                                row.runtime.as_str(),
                            ),
                        );
                    }
                    self.store
                        .seed_put(id, &files, self.now())
                        .await
                        .map_err(AppError::internal("failed to restart"))?;
                    config_dir = name;
                }
                None if named => {
                    return Err(AppError::not_found(format!("template not found: {name}")));
                }
                None => {}
            }
        }
        self.operator_restart(&row, "restart requested by an operator")
            .await?;
        Ok(Restarted {
            status: "provisioning".into(),
            config_dir,
            reset_session: req.reset,
        })
    }

    /// A restart an operator (or an operator's action, such as installing a
    /// plugin) asked for, with its reason: the crash-loop history is
    /// cleared, a pending governed restart dropped, the agent told why.
    pub(crate) async fn operator_restart(&self, row: &WorkspaceRow, reason: &str) -> AppResult<()> {
        let prov = self.provisioner()?.clone();
        self.supersede(row.id, true);
        self.queue_restart_context(row, reason);
        self.reprovision(&prov, row, Transition::OPERATOR_RESTART, reason)
            .await?;
        self.tasks.activate(PROVISIONER_TASK);
        Ok(())
    }

    /// POST /workspaces/:id/pause — self and every active descendant.
    pub async fn workspace_pause(&self, access: WorkspaceAccess) -> AppResult<Paused> {
        let id = access.uuid();
        let row = self
            .store
            .workspace_get(id)
            .await
            .map_err(AppError::internal("lookup failed"))?;
        let Some(row) =
            row.filter(|r| !matches!(r.status, WorkspaceStatus::Removed | WorkspaceStatus::Paused))
        else {
            return Err(AppError::not_found("workspace not found or already paused"));
        };
        let mut targets = vec![row];
        targets.extend(
            self.descendants_where(id, |s| s != WorkspaceStatus::Paused)
                .await?,
        );
        let mut paused = 0;
        for r in targets {
            // Paused first, then stopped: a health sweep or a liveness
            // check that sees the runtime gone meanwhile re-reads a paused
            // row and leaves it alone (stopped first, a sweep in between
            // took the stop for a crash and restarted the workspace).
            let changed = self
                .store
                .workspace_transition(
                    r.id,
                    Transition::PAUSE,
                    Some("paused by an operator"),
                    self.now(),
                )
                .await
                .map_err(AppError::internal("failed to update"))?;
            self.supersede(r.id, false);
            match &self.provisioner {
                // A url left behind is harmless on a paused row.
                Some(prov) => {
                    let _ = self.end_runtime(prov, r.id, "while pausing").await;
                }
                None => self.status_written(r.id),
            }
            if changed {
                paused += 1;
                self.events
                    .emit(Event::new(
                        EventType::WorkspacePaused,
                        r.id,
                        json!({ "name": r.name }),
                    ))
                    .await;
            }
        }
        Ok(Paused {
            status: "paused".into(),
            paused_count: paused,
        })
    }

    /// POST /workspaces/:id/resume — self and every paused descendant.
    pub async fn workspace_resume(&self, access: WorkspaceAccess) -> AppResult<Resumed> {
        let id = access.uuid();
        let row = self
            .store
            .workspace_get(id)
            .await
            .map_err(AppError::internal("lookup failed"))?;
        let Some(row) = row.filter(|r| r.status == WorkspaceStatus::Paused) else {
            return Err(AppError::not_found("workspace not found or not paused"));
        };
        let prov = self.provisioner()?.clone();
        if let Some(name) = self.ancestor_paused(&row).await? {
            return Err(conflict_paused(&name));
        }
        let mut targets = vec![row];
        targets.extend(
            self.descendants_where(id, |s| s == WorkspaceStatus::Paused)
                .await?,
        );
        let n = targets.len();
        for r in targets {
            self.supersede(r.id, true);
            self.reprovision(
                &prov,
                &r,
                Transition::OPERATOR_RESTART,
                "resumed by an operator",
            )
            .await?;
        }
        self.tasks.activate(PROVISIONER_TASK);
        Ok(Resumed {
            status: "provisioning".into(),
            resumed_count: n,
        })
    }

    /// The rows of `id`'s non-removed descendants whose status passes `keep`.
    async fn descendants_where(
        &self,
        id: Uuid,
        keep: impl Fn(WorkspaceStatus) -> bool,
    ) -> AppResult<Vec<WorkspaceRow>> {
        let lookup = || AppError::internal("lookup failed");
        let mut rows = Vec::new();
        for (d, _) in self
            .store
            .workspace_descendants(id)
            .await
            .map_err(lookup())?
        {
            if let Some(r) = self.store.workspace_get(d).await.map_err(lookup())?
                && keep(r.status)
            {
                rows.push(r);
            }
        }
        Ok(rows)
    }
}

fn conflict_paused(name: &str) -> AppError {
    AppError::conflict(format!(
        "parent workspace \"{name}\" is paused — resume it first"
    ))
}
