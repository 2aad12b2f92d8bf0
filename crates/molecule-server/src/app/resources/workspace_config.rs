//! `GET/PATCH /workspaces/:id/config` (api-contract §5.8): a JSON object
//! per workspace, shallow-merged on PATCH.

use molecule_types::dto::StatusReply;
use molecule_types::workspace_data::WorkspaceConfig;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::app::auth::WorkspaceAccess;
use crate::error::{AppError, AppResult};

impl App {
    pub async fn config_get(&self, access: WorkspaceAccess) -> AppResult<WorkspaceConfig> {
        let ws = access.uuid();
        let data = self
            .store
            .config_get(ws)
            .await
            .map_err(AppError::internal("query failed"))?
            .unwrap_or_else(|| json!({}));
        Ok(WorkspaceConfig { data })
    }

    /// The patch must be a JSON object (the reference accepted any JSON and
    /// let `jsonb ||` turn the config into an array).
    pub async fn config_patch(
        &self,
        access: WorkspaceAccess,
        body: &[u8],
    ) -> AppResult<StatusReply> {
        let ws = access.uuid();
        let patch: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(AppError::invalid(
                    "invalid JSON: the config patch must be an object",
                ));
            }
            Err(_) => return Err(AppError::invalid("invalid JSON")),
        };
        self.workspace_row(ws).await?;
        self.store
            .config_merge(ws, &patch, self.now())
            .await
            .map_err(AppError::internal("failed to update config"))?;
        Ok(StatusReply {
            status: "updated".into(),
        })
    }
}
