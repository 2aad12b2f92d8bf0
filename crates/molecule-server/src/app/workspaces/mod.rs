//! Workspace CRUD (api-contract §5.2, §5.3 `state`, §5.1 test-token): the
//! rules for creating, reading, patching and deleting workspace rows, and
//! the events those changes raise.

pub mod lifecycle;
pub mod operator;
pub mod registry;
pub mod restart_context;
pub mod terminal;

use crate::app::validation::{
    ACCESS_MODES, NAME_MAX, TEXT_MAX, URL_MAX, cap, validate_tier, validate_workspace_dir,
};
use molecule_store::{NewWorkspace, WorkspacePatch, WorkspaceRow};
use molecule_types::dto::{
    CreateWorkspace, CreatedWorkspace, Removed, TestToken, Updated, Workspace, WorkspaceState,
};
use molecule_types::{Event, EventType, Runtime, Transition, WorkspaceStatus};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::App;
use crate::app::auth::{AdminAccess, DevAccess, PatchAccess, ReadAccess, WorkspaceAccess};
use crate::config::Mode;
use crate::error::{AppError, AppResult};
use molecule_types::WorkspaceId;

pub const DEFAULT_RUNTIME: &str = "langgraph";

/// What a workspace created by an import brings besides its request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Creation {
    /// The complete files of its `/configs` (instead of the template's or
    /// the generated ones).
    pub files: Option<molecule_store::SeedFiles>,
    /// Workspace secrets stored (sealed) before its first start.
    pub secrets: Vec<(String, String)>,
    /// The bundle it was imported from.
    pub source_bundle_id: Option<String>,
}

impl App {
    /// Convert a row to the wire view, overlaying heartbeat statistics that
    /// are still buffered.
    pub fn view(&self, row: WorkspaceRow) -> Workspace {
        let pending = self.heartbeats.pending(row.id);
        let (rate, sample, active, uptime, task) = match pending {
            Some(p) => (
                p.error_rate,
                Some(p.sample_error),
                p.active_tasks,
                p.uptime_seconds,
                Some(p.current_task),
            ),
            None => (
                row.last_error_rate,
                row.last_sample_error,
                row.active_tasks,
                row.uptime_seconds,
                row.current_task,
            ),
        };
        Workspace {
            id: row.id,
            name: row.name,
            role: row.role.filter(|r| !r.is_empty()),
            tier: row.tier,
            status: row.status,
            status_reason: row.status_reason,
            agent_card: row.agent_card,
            a2a_conformance: row.a2a_conformance,
            url: row.url.unwrap_or_default(),
            parent_id: row.parent_id,
            active_tasks: active,
            last_error_rate: rate,
            last_sample_error: sample.unwrap_or_default(),
            uptime_seconds: uptime,
            current_task: task.unwrap_or_default(),
            runtime: row.runtime.to_string(),
            workspace_dir: row.workspace_dir,
            x: row.x,
            y: row.y,
            collapsed: row.collapsed,
        }
    }

    pub async fn workspace_row(&self, id: Uuid) -> AppResult<WorkspaceRow> {
        self.store
            .workspace_get(id)
            .await
            .map_err(AppError::internal("lookup failed"))?
            .ok_or_else(|| AppError::not_found("workspace not found"))
    }

    /// The row of a workspace that exists and is not removed (404 otherwise).
    pub async fn live_workspace_row(&self, id: Uuid) -> AppResult<WorkspaceRow> {
        let row = self.workspace_row(id).await?;
        if row.status == WorkspaceStatus::Removed {
            return Err(AppError::not_found("workspace not found"));
        }
        Ok(row)
    }

    pub async fn workspace_get(&self, access: ReadAccess) -> AppResult<Workspace> {
        let id = access.uuid();
        Ok(self.view(self.workspace_row(id).await?))
    }

    pub async fn workspace_list(&self, _: AdminAccess) -> AppResult<Vec<Workspace>> {
        let rows = self
            .store
            .workspace_list()
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows.into_iter().map(|r| self.view(r)).collect())
    }

    pub async fn workspace_create(
        &self,
        admin: AdminAccess,
        req: CreateWorkspace,
    ) -> AppResult<CreatedWorkspace> {
        self.create_workspace(admin, req, Creation::default()).await
    }

    /// Create a workspace with what an import brings besides the request
    /// (see [`Creation`]): everything is in place before its first start.
    pub(crate) async fn create_workspace(
        &self,
        _: AdminAccess,
        req: CreateWorkspace,
        extras: Creation,
    ) -> AppResult<CreatedWorkspace> {
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(AppError::invalid("name is required"));
        }
        cap("name", &name, NAME_MAX)?;
        for (field, value, max) in [
            ("role", &req.role, TEXT_MAX),
            ("template", &req.template, NAME_MAX),
            ("runtime", &req.runtime, NAME_MAX),
            ("model", &req.model, NAME_MAX),
            ("url", &req.url, URL_MAX),
            ("workspace_dir", &req.workspace_dir, URL_MAX),
        ] {
            if let Some(v) = value {
                cap(field, v, max)?;
            }
        }
        let tier = validate_tier(req.tier.unwrap_or(1) as i64)?;
        let access = req
            .workspace_access
            .clone()
            .unwrap_or_else(|| "none".into());
        if !ACCESS_MODES.contains(&access.as_str()) {
            return Err(AppError::invalid(
                "workspace_access must be none, read_only or read_write",
            ));
        }
        let dir = req.workspace_dir.clone().filter(|d| !d.is_empty());
        if let Some(d) = &dir {
            validate_workspace_dir(d, &self.config.workspace_dir_roots)
                .map_err(AppError::invalid)?;
        }
        if access != "none" && dir.is_none() {
            return Err(AppError::invalid(format!(
                "workspace_access {access} requires workspace_dir"
            )));
        }
        if let Some(u) = &req.url {
            self.outbound
                .check_workspace_url(u)
                .map_err(AppError::invalid)?;
        }
        if let Some(p) = req.parent_id {
            match self
                .store
                .workspace_get(p)
                .await
                .map_err(AppError::internal("failed to create workspace"))?
            {
                Some(parent) if parent.status != WorkspaceStatus::Removed => {}
                _ => return Err(AppError::invalid("parent workspace not found")),
            }
        }
        // The files of its /configs (template copy or generated config),
        // and the runtime its template may name.
        let (seed, runtime) = if req.external {
            (None, Runtime::External)
        } else {
            let (mut files, runtime) = self
                .creation_seed(
                    req.template.as_deref(),
                    &name,
                    req.role.as_deref(),
                    req.model.as_deref(),
                    tier,
                    req.runtime.as_deref(),
                )
                .await?;
            if let Some(own) = extras.files {
                files = own;
            }
            (Some(files), Runtime::parse(&runtime))
        };
        let external = runtime.is_external();
        let id = Uuid::new_v4();
        let awareness = format!("workspace:{id}");
        let canvas = req.canvas.clone().unwrap_or_default();
        let row = NewWorkspace {
            id,
            name: name.clone(),
            role: req.role.clone().filter(|r| !r.is_empty()),
            tier,
            status: WorkspaceStatus::Provisioning,
            url: if external { req.url.clone() } else { None },
            parent_id: req.parent_id,
            awareness_namespace: Some(awareness.clone()),
            runtime,
            workspace_dir: dir,
            workspace_access: access.clone(),
            source_bundle_id: extras.source_bundle_id.clone(),
            x: canvas.x,
            y: canvas.y,
            now: self.now(),
        };
        // Row and seed in one transaction: the provisioner (woken by any
        // creation) never sees this row without the files it starts with.
        match &seed {
            Some(files) => {
                let secrets = self.seal_secrets(&extras.secrets)?;
                self.store
                    .workspace_insert_seeded(&row, files, &secrets)
                    .await
            }
            None => self.store.workspace_insert(&row).await,
        }
        .map_err(AppError::internal("failed to create workspace"))?;
        if seed.is_none() {
            // An external workspace has no start to wait for.
            for (key, value) in &extras.secrets {
                self.secret_seed(id, key, value).await?;
            }
        }
        self.hierarchy.set_parent(id, req.parent_id);
        let mut announced = json!({ "name": name, "tier": tier });
        if let Some(p) = req.parent_id {
            announced["parent_id"] = json!(p);
        }
        if let Some(b) = &extras.source_bundle_id {
            announced["source_bundle_id"] = json!(b);
        }
        self.events
            .emit(Event::new(EventType::WorkspaceProvisioning, id, announced))
            .await;

        // Production: the credential is born with the workspace. A runtime
        // the platform starts receives one in its environment; anything
        // else (an external agent, no runtime backend) gets it here, once.
        let auth_token =
            if self.config.mode == Mode::Production && (external || self.provisioner.is_none()) {
                Some(self.issue_token(id).await?)
            } else {
                None
            };
        if external {
            self.external_online(id, &name, req.url.as_deref()).await?;
            return Ok(CreatedWorkspace {
                id,
                status: WorkspaceStatus::Online,
                awareness_namespace: None,
                workspace_access: None,
                external: Some(true),
                auth_token,
            });
        }
        let reason = if self.provisioner.is_some() {
            "waiting for the runtime to start"
        } else {
            "waiting for the agent to register"
        };
        self.tasks
            .activate(crate::app::workspaces::lifecycle::PROVISIONER_TASK);
        let _ = self
            .store
            .workspace_transition(
                id,
                Transition::PROVISIONING_PROGRESS,
                Some(reason),
                self.now(),
            )
            .await;
        self.status_written(id);
        Ok(CreatedWorkspace {
            id,
            status: WorkspaceStatus::Provisioning,
            awareness_namespace: Some(awareness),
            workspace_access: Some(access),
            external: None,
            auth_token,
        })
    }

    async fn external_online(&self, id: Uuid, name: &str, url: Option<&str>) -> AppResult<()> {
        if let Some(u) = url {
            self.urls.set_internal(id, u.to_string());
        }
        self.store
            .workspace_transition(id, Transition::EXTERNAL_ONLINE, None, self.now())
            .await
            .map_err(AppError::internal("failed to create workspace"))?;
        self.status_written(id);
        self.events
            .emit(Event::new(
                EventType::WorkspaceOnline,
                id,
                json!({ "name": name, "external": true }),
            ))
            .await;
        Ok(())
    }

    /// PATCH /workspaces/:id. Every field is validated before anything is
    /// written, and the write is one transaction.
    pub async fn workspace_patch(&self, access: PatchAccess) -> AppResult<Updated> {
        let id = access.id().uuid();
        let body = access.into_body();
        self.workspace_row(id).await?;
        let mut patch = WorkspacePatch::default();
        let str_field = |k: &str| -> AppResult<Option<Option<String>>> {
            match body.get(k) {
                None => Ok(None),
                Some(Value::Null) => Ok(Some(None)),
                Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
                Some(_) => Err(AppError::invalid(format!("{k} must be a string"))),
            }
        };
        for (field, max) in [
            ("name", NAME_MAX),
            ("role", TEXT_MAX),
            ("runtime", NAME_MAX),
            ("workspace_dir", URL_MAX),
        ] {
            if let Some(Value::String(v)) = body.get(field) {
                cap(field, v, max)?;
            }
        }
        if let Some(name) = str_field("name")? {
            let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
            patch.name =
                Some(name.ok_or_else(|| AppError::invalid("name must be a non-empty string"))?);
        }
        if let Some(role) = str_field("role")? {
            patch.role = Some(role.filter(|r| !r.is_empty()));
        }
        if let Some(tier) = body.get("tier") {
            let t = tier
                .as_i64()
                .ok_or_else(|| AppError::invalid("tier must be an integer"))?;
            patch.tier = Some(validate_tier(t)?);
        }
        if let Some(runtime) = str_field("runtime")? {
            let r = runtime
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| AppError::invalid("runtime must be a non-empty string"))?;
            patch.runtime = Some(Runtime::parse(&r));
        }
        if let Some(dir) = str_field("workspace_dir")? {
            let dir = dir.filter(|d| !d.is_empty());
            if let Some(d) = &dir {
                validate_workspace_dir(d, &self.config.workspace_dir_roots)
                    .map_err(AppError::invalid)?;
            }
            patch.workspace_dir = Some(dir);
        }
        if let Some(parent) = body.get("parent_id") {
            let parent = match parent {
                Value::Null => None,
                Value::String(s) if s.is_empty() => None,
                Value::String(s) => Some(
                    s.parse::<Uuid>()
                        .map_err(|_| AppError::invalid("parent_id must be a UUID or null"))?,
                ),
                _ => return Err(AppError::invalid("parent_id must be a UUID or null")),
            };
            if let Some(p) = parent {
                if p == id {
                    return Err(AppError::invalid("a workspace cannot be its own parent"));
                }
                match self
                    .store
                    .workspace_get(p)
                    .await
                    .map_err(AppError::internal("lookup failed"))?
                {
                    Some(row) if row.status != WorkspaceStatus::Removed => {}
                    _ => return Err(AppError::invalid("parent workspace not found")),
                }
                if self
                    .hierarchy
                    .is_strict_ancestor(id, p)
                    .await
                    .map_err(AppError::internal("lookup failed"))?
                {
                    return Err(AppError::invalid("parent_id would create a cycle"));
                }
            }
            patch.parent_id = Some(parent);
        }
        if let (Some(x), Some(y)) = (body.get("x"), body.get("y")) {
            let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) else {
                return Err(AppError::invalid("x and y must be numbers"));
            };
            patch.position = Some((x, y));
        }
        let found = self
            .store
            .workspace_patch(id, &patch, self.now())
            .await
            .map_err(AppError::internal("failed to update workspace"))?;
        if !found {
            return Err(AppError::not_found("workspace not found"));
        }
        if let Some(parent) = patch.parent_id {
            self.hierarchy.set_parent(id, parent);
        }
        // Name, role, parent, position: the others re-read the row.
        self.workspace_changed(id);
        Ok(Updated {
            status: "updated".into(),
            needs_restart: body.contains_key("workspace_dir").then_some(true),
        })
    }

    /// DELETE /workspaces/:id: the whole subtree, status first.
    pub async fn workspace_delete(
        &self,
        _: AdminAccess,
        id: WorkspaceId,
        confirm: bool,
    ) -> AppResult<Removed> {
        let id = id.uuid();
        let row = self.workspace_row(id).await?;
        if row.status == WorkspaceStatus::Removed {
            return Ok(Removed {
                status: "removed".into(),
                cascade_deleted: 0,
            });
        }
        let children = self
            .store
            .workspace_list_children(Some(id))
            .await
            .map_err(AppError::internal("failed to check children"))?;
        if !children.is_empty() && !confirm {
            let children = children.iter().map(|c| (c.id, c.name.clone())).collect();
            return Err(AppError::ConfirmationRequired { children });
        }
        let descendants = self
            .store
            .workspace_descendants(id)
            .await
            .map_err(AppError::internal("failed to check children"))?;
        let mut ids: Vec<Uuid> = descendants.iter().map(|(d, _)| *d).collect();
        ids.push(id);
        self.store
            .workspace_remove_many(&ids, self.now())
            .await
            .map_err(AppError::internal("failed to delete workspace"))?;
        for ws in &ids {
            self.status_written(*ws);
        }
        self.tokens_revoked(&ids).await;
        for ws in &ids {
            self.supersede(*ws, true);
            if let Some(prov) = &self.provisioner
                && let Err(e) = prov.remove(*ws, true).await
            {
                tracing::warn!(workspace_id = %ws, error = %e, "could not remove the runtime of a deleted workspace");
            }
            self.liveness.forget(*ws);
            self.heartbeats.discard(*ws);
            self.urls.clear(*ws);
        }
        for (d, _) in &descendants {
            self.events
                .emit(Event::new(EventType::WorkspaceRemoved, *d, json!({})))
                .await;
        }
        let n = descendants.len();
        self.events
            .emit(Event::new(
                EventType::WorkspaceRemoved,
                id,
                json!({ "cascade_deleted": n }),
            ))
            .await;
        Ok(Removed {
            status: "removed".into(),
            cascade_deleted: n,
        })
    }

    pub async fn workspace_state(&self, access: WorkspaceAccess) -> AppResult<WorkspaceState> {
        let id = access.uuid();
        let row = self
            .store
            .workspace_get(id)
            .await
            .map_err(AppError::internal("lookup failed"))?;
        match row {
            None => Err(AppError::WorkspaceDeleted {
                id,
                row_remains: false,
            }),
            Some(r) if r.status == WorkspaceStatus::Removed => Err(AppError::WorkspaceDeleted {
                id,
                row_remains: true,
            }),
            Some(r) => Ok(WorkspaceState {
                workspace_id: id,
                status: Some(r.status),
                paused: Some(r.status == WorkspaceStatus::Paused),
                deleted: false,
            }),
        }
    }

    /// GET /admin/workspaces/:id/test-token (development, loopback only).
    pub async fn test_token(&self, _: DevAccess, id: WorkspaceId) -> AppResult<TestToken> {
        let id = id.uuid();
        match self
            .store
            .workspace_get(id)
            .await
            .map_err(AppError::internal("lookup failed"))?
        {
            Some(r) if r.status != WorkspaceStatus::Removed => {}
            _ => return Err(AppError::not_found("workspace not found")),
        }
        Ok(TestToken {
            auth_token: self.issue_token(id).await?,
            workspace_id: id,
        })
    }
}
