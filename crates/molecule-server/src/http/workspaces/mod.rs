//! Workspace CRUD handlers (api-contract §5.2) and `GET /workspaces/:id/state`.

pub(super) mod registry;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use molecule_types::dto::{
    CreateWorkspace, CreatedWorkspace, Paused, Removed, RestartRequest, Restarted, Resumed,
    Updated, Workspace, WorkspaceState,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::app::App;
use crate::error::{AppError, AppResult};
use crate::http::extract::{Bearer, JsonBody, WorkspacePath, read_body};

pub async fn list(State(app): State<App>, bearer: Bearer) -> AppResult<Json<Vec<Workspace>>> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok(Json(app.workspace_list(admin).await?))
}

pub async fn create(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(req): JsonBody<CreateWorkspace>,
) -> AppResult<(StatusCode, Json<CreatedWorkspace>)> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok((
        StatusCode::CREATED,
        Json(app.workspace_create(admin, req).await?),
    ))
}

pub async fn get(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Workspace>> {
    let access = app.auth_reader(id, bearer.creds()).await?;
    Ok(Json(app.workspace_get(access).await?))
}

pub async fn patch(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> AppResult<Json<Updated>> {
    let access = app.auth_patch(id, body, bearer.creds()).await?;
    Ok(Json(app.workspace_patch(access).await?))
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
    let admin = app.auth_admin(bearer.creds())?;
    Ok(Json(
        app.workspace_delete(admin, id.into(), q.confirm.as_deref() == Some("true"))
            .await?,
    ))
}

pub async fn state(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<WorkspaceState>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.workspace_state(access).await?))
}

#[derive(Deserialize)]
pub struct RestartQuery {
    #[serde(default)]
    reset: Option<String>,
}

/// The body is optional: none, or `{template, apply_template, reset}`.
pub async fn restart(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    Query(q): Query<RestartQuery>,
    req: Request,
) -> AppResult<Json<Restarted>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    let body = read_body(req, &()).await?;
    let mut restart: RestartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RestartRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::invalid(format!("invalid request body: {e}")))?
    };
    restart.reset |= q.reset.as_deref() == Some("true");
    Ok(Json(app.workspace_restart(access, restart).await?))
}

pub async fn pause(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Paused>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.workspace_pause(access).await?))
}

pub async fn resume(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Resumed>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.workspace_resume(access).await?))
}
