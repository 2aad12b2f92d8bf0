//! Workspace CRUD handlers (api-contract §5.2) and `GET /workspaces/:id/state`.

pub(super) mod registry;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use molecule_types::dto::{
    CreateWorkspace, CreatedWorkspace, Paused, Removed, Restarted, Resumed, Updated, Workspace,
    WorkspaceState,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::app::App;
use crate::error::AppResult;
use crate::http::extract::{Bearer, JsonBody, WorkspacePath};

pub async fn list(State(app): State<App>, bearer: Bearer) -> AppResult<Json<Vec<Workspace>>> {
    app.auth_admin(bearer.creds())?;
    Ok(Json(app.workspace_list().await?))
}

pub async fn create(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(req): JsonBody<CreateWorkspace>,
) -> AppResult<(StatusCode, Json<CreatedWorkspace>)> {
    app.auth_admin(bearer.creds())?;
    Ok((StatusCode::CREATED, Json(app.workspace_create(req).await?)))
}

pub async fn get(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Workspace>> {
    app.auth_reader(id, bearer.creds()).await?;
    Ok(Json(app.workspace_get(id).await?))
}

pub async fn patch(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> AppResult<Json<Updated>> {
    Ok(Json(app.workspace_patch(id, body, bearer.creds()).await?))
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn delete(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    Query(q): Query<DeleteQuery>,
) -> AppResult<Json<Removed>> {
    app.auth_admin(bearer.creds())?;
    Ok(Json(
        app.workspace_delete(id, q.confirm.as_deref() == Some("true"))
            .await?,
    ))
}

pub async fn state(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<WorkspaceState>> {
    app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.workspace_state(id).await?))
}

pub async fn restart(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Restarted>> {
    app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.workspace_restart(id).await?))
}

pub async fn pause(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Paused>> {
    app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.workspace_pause(id).await?))
}

pub async fn resume(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Resumed>> {
    app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.workspace_resume(id).await?))
}
