//! Team expand and collapse (api-contract §5.12, subsystems §5.1): a
//! workspace whose template lists `sub_workspaces` can grow that team
//! below it, and drop it again.
//!
//! Fixed against the reference: children are created like any workspace
//! (validated, seeded from their template inside the templates directory,
//! provisioned with secrets and runtime, failures marked); collapse removes
//! the whole subtree with delete's semantics (containers, volumes, tokens),
//! not only the direct children.

use molecule_types::content::{Collapsed, Expanded, ExpandedChild};
use molecule_types::dto::CreateWorkspace;
use molecule_types::{Event, EventType, WorkspaceId, WorkspaceStatus};
use serde_json::{Value, json};

use crate::app::App;
use crate::app::auth::{AdminAccess, WorkspaceAccess};
use crate::app::content::templates::{Template, normalise_name};
use crate::error::{AppError, AppResult};

/// Most children one expand creates.
const MAX_CHILDREN: usize = 50;

impl App {
    /// The template of a workspace called `name`: the directory of its
    /// normalised name, else one whose `config.yaml` says `name: <name>`.
    async fn template_named(&self, name: &str) -> AppResult<Option<Template>> {
        if let Some(t) = self.template(&normalise_name(name)).await? {
            return Ok(Some(t));
        }
        for (dir, config) in self.template_configs().await {
            if config.get("name").and_then(Value::as_str) == Some(name) {
                return self.template(&dir).await;
            }
        }
        Ok(None)
    }

    /// `POST /workspaces/:id/expand`.
    pub async fn team_expand(&self, access: WorkspaceAccess) -> AppResult<Expanded> {
        let ws = access.uuid();
        let row = self.live_workspace_row(ws).await?;
        let template = self
            .template_named(&row.name)
            .await?
            .ok_or_else(|| AppError::invalid("no config found for workspace"))?;
        let subs = match template.config.get("sub_workspaces") {
            Some(Value::Array(list)) if !list.is_empty() => list.clone(),
            _ => {
                return Err(AppError::invalid(
                    "the workspace's template lists no sub_workspaces",
                ));
            }
        };
        if subs.len() > MAX_CHILDREN {
            return Err(AppError::invalid(format!(
                "too many sub_workspaces (limit {MAX_CHILDREN})"
            )));
        }
        // Every entry is checked before anything is created.
        let mut wanted = Vec::new();
        for (i, sub) in subs.iter().enumerate() {
            let text = |k: &str| {
                sub.get(k)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            let config = text("config");
            let name = text("name").or_else(|| config.clone()).ok_or_else(|| {
                AppError::invalid(format!("sub_workspaces[{i}] needs a name or a config"))
            })?;
            if let Some(c) = &config {
                self.template_dir(c)?;
            }
            wanted.push((name, text("role"), config));
        }
        // The platform creates them on the caller's behalf: the caller may
        // act on the parent, and children are created as an operator would.
        let operator = AdminAccess::granted();
        let mut children = Vec::new();
        for (name, role, config) in wanted {
            let created = self
                .workspace_create(
                    operator,
                    CreateWorkspace {
                        name: name.clone(),
                        role: role.clone(),
                        template: config,
                        tier: Some(row.tier),
                        parent_id: Some(ws),
                        ..Default::default()
                    },
                )
                .await?;
            children.push(ExpandedChild {
                id: created.id,
                name,
                role,
            });
        }
        self.events
            .emit(Event::new(
                EventType::WorkspaceExpanded,
                ws,
                json!({ "children": children }),
            ))
            .await;
        Ok(Expanded {
            status: "expanded".into(),
            children,
        })
    }

    /// `POST /workspaces/:id/collapse`: every workspace below it is
    /// removed as `DELETE /workspaces/:child?confirm=true` removes it.
    pub async fn team_collapse(&self, access: WorkspaceAccess) -> AppResult<Collapsed> {
        let ws = access.uuid();
        self.live_workspace_row(ws).await?;
        let below = self
            .store
            .workspace_descendants(ws)
            .await
            .map_err(AppError::internal("query failed"))?;
        let children = self
            .store
            .workspace_list_children(Some(ws))
            .await
            .map_err(AppError::internal("query failed"))?;
        let operator = AdminAccess::granted();
        for child in children
            .iter()
            .filter(|c| c.status != WorkspaceStatus::Removed)
        {
            self.workspace_delete(operator, WorkspaceId::new(child.id), true)
                .await?;
        }
        let removed: Vec<String> = below.into_iter().map(|(_, name)| name).collect();
        self.events
            .emit(Event::new(
                EventType::WorkspaceCollapsed,
                ws,
                json!({ "removed_children": removed }),
            ))
            .await;
        Ok(Collapsed {
            status: "collapsed".into(),
            removed,
        })
    }
}
