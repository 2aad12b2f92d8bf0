//! Agent records (api-contract §5.13): which model a workspace's agent
//! runs, kept in the `agents` table. No container effect.

use molecule_store::AgentMove;
use molecule_types::content::{AgentAssigned, AgentMoved, AgentRemoved, AgentReplaced};
use molecule_types::{Event, EventType, WorkspaceId};
use serde_json::json;
use uuid::Uuid;

use crate::app::App;
use crate::app::auth::WorkspaceAccess;
use crate::app::validation::{NAME_MAX, cap};
use crate::error::{AppError, AppResult};

fn model_of(raw: &str) -> AppResult<String> {
    let model = raw.trim();
    if model.is_empty() {
        return Err(AppError::invalid("model is required"));
    }
    cap("model", model, NAME_MAX)?;
    Ok(model.to_string())
}

impl App {
    /// `POST /workspaces/:id/agent`.
    pub async fn agent_assign(
        &self,
        access: WorkspaceAccess,
        model: &str,
    ) -> AppResult<AgentAssigned> {
        let model = model_of(model)?;
        let ws = access.uuid();
        self.live_workspace_row(ws).await?;
        let row = self
            .store
            .agent_assign(access.id(), &model, self.now())
            .await
            .map_err(AppError::internal("failed to assign agent"))?
            .ok_or_else(|| {
                AppError::conflict("workspace already has an active agent, use PATCH to replace")
            })?;
        self.events
            .emit(Event::new(
                EventType::AgentAssigned,
                ws,
                json!({ "agent_id": row.id, "model": row.model }),
            ))
            .await;
        Ok(AgentAssigned {
            agent_id: row.id,
            model: row.model,
        })
    }

    /// `PATCH /workspaces/:id/agent`.
    pub async fn agent_replace(
        &self,
        access: WorkspaceAccess,
        model: &str,
    ) -> AppResult<AgentReplaced> {
        let model = model_of(model)?;
        let ws = access.uuid();
        self.live_workspace_row(ws).await?;
        let (old, new) = self
            .store
            .agent_replace(access.id(), &model, self.now())
            .await
            .map_err(AppError::internal("failed to replace agent"))?
            .ok_or_else(|| AppError::not_found("no active agent to replace"))?;
        let answer = AgentReplaced {
            agent_id: new.id,
            model: new.model,
            old_model: old.model,
        };
        self.events
            .emit(Event::new(
                EventType::AgentReplaced,
                ws,
                json!({ "agent_id": answer.agent_id, "model": answer.model, "old_model": answer.old_model }),
            ))
            .await;
        Ok(answer)
    }

    /// `DELETE /workspaces/:id/agent`.
    pub async fn agent_remove(&self, access: WorkspaceAccess) -> AppResult<AgentRemoved> {
        let ws = access.uuid();
        self.live_workspace_row(ws).await?;
        let row = self
            .store
            .agent_remove(access.id(), self.now())
            .await
            .map_err(AppError::internal("failed to remove agent"))?
            .ok_or_else(|| AppError::not_found("no active agent to remove"))?;
        self.events
            .emit(Event::new(
                EventType::AgentRemoved,
                ws,
                json!({ "agent_id": row.id, "model": row.model }),
            ))
            .await;
        Ok(AgentRemoved {
            status: "removed".into(),
            agent_id: row.id,
        })
    }

    /// `POST /workspaces/:id/agent/move`: the source's token (or the admin
    /// token) moves its agent to any live workspace without one.
    pub async fn agent_move(&self, access: WorkspaceAccess, target: &str) -> AppResult<AgentMoved> {
        let target = target.trim();
        if target.is_empty() {
            return Err(AppError::invalid("target_workspace_id is required"));
        }
        let not_found = || AppError::not_found("target workspace not found");
        let target: Uuid = target.parse().map_err(|_| not_found())?;
        let ws = access.uuid();
        self.live_workspace_row(ws).await?;
        if target == ws {
            return Err(AppError::invalid(
                "target_workspace_id must differ from the source workspace",
            ));
        }
        self.live_workspace_row(target).await.map_err(|e| match e {
            AppError::NotFound(_) => not_found(),
            other => other,
        })?;
        let moved = match self
            .store
            .agent_move(access.id(), WorkspaceId::new(target))
            .await
            .map_err(AppError::internal("failed to move agent"))?
        {
            AgentMove::Moved(row) => row,
            AgentMove::TargetTaken => {
                return Err(AppError::conflict(
                    "target workspace already has an active agent",
                ));
            }
            AgentMove::NoSource => {
                return Err(AppError::not_found("no active agent in source workspace"));
            }
        };
        self.events
            .emit(Event::new(
                EventType::AgentMoved,
                ws,
                json!({ "agent_id": moved.id, "model": moved.model, "target_workspace_id": target }),
            ))
            .await;
        self.events
            .emit(Event::new(
                EventType::AgentMoved,
                target,
                json!({ "agent_id": moved.id, "model": moved.model, "source_workspace_id": ws }),
            ))
            .await;
        Ok(AgentMoved {
            agent_id: moved.id,
            model: moved.model,
            from_workspace: ws,
            to_workspace: target,
        })
    }
}
