//! Schedule handlers (api-contract §5.8) and workspace config.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::app::App;
use crate::error::{AppError, AppResult};
use crate::http::extract::{Bearer, CallerHeader, JsonBody, WorkspacePath, read_body};
use molecule_types::dto::StatusReply;
use molecule_types::workspace_data::{
    CreateSchedule, Schedule, ScheduleCreated, ScheduleFired, ScheduleHealth, ScheduleRun,
    WorkspaceConfig,
};

/// `/workspaces/{id}/{…}/{sub}`: a non-UUID workspace id names no
/// workspace (404); a non-UUID sub-id names no `what` (404).
pub fn ids(raw: (String, String), what: &str) -> AppResult<(Uuid, Uuid)> {
    let ws = raw
        .0
        .parse()
        .map_err(|_| AppError::not_found("workspace not found"))?;
    let sub = raw
        .1
        .parse()
        .map_err(|_| AppError::not_found(format!("{what} not found")))?;
    Ok((ws, sub))
}

pub async fn list(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
) -> AppResult<Json<Vec<Schedule>>> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.schedule_list(access).await?))
}

pub async fn create(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
    JsonBody(req): JsonBody<CreateSchedule>,
) -> AppResult<(StatusCode, Json<ScheduleCreated>)> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok((
        StatusCode::CREATED,
        Json(app.schedule_create(access, req).await?),
    ))
}

pub async fn patch(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> AppResult<Json<molecule_types::dto::StatusReply>> {
    let (ws, id) = ids(raw, "schedule")?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    app.schedule_patch(access, id, body).await?;
    Ok(crate::http::ack("updated"))
}

pub async fn delete(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
) -> AppResult<Json<molecule_types::dto::StatusReply>> {
    let (ws, id) = ids(raw, "schedule")?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    app.schedule_delete(access, id).await?;
    Ok(crate::http::ack("deleted"))
}

pub async fn run(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
) -> AppResult<Json<ScheduleFired>> {
    let (ws, id) = ids(raw, "schedule")?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.schedule_run_now(access, id).await?))
}

pub async fn history(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
) -> AppResult<Json<Vec<ScheduleRun>>> {
    let (ws, id) = ids(raw, "schedule")?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.schedule_history(access, id).await?))
}

pub async fn health(
    State(app): State<App>,
    bearer: Bearer,
    caller: CallerHeader,
    WorkspacePath(ws): WorkspacePath,
) -> AppResult<Json<Vec<ScheduleHealth>>> {
    let peer = app
        .auth_peer(ws, caller.0.as_deref(), bearer.creds())
        .await?;
    Ok(Json(app.schedule_health(peer).await?))
}

pub async fn config_get(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
) -> AppResult<Json<WorkspaceConfig>> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.config_get(access).await?))
}

pub async fn config_patch(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
    req: Request,
) -> AppResult<Json<StatusReply>> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    let body = read_body(req, &()).await?;
    Ok(Json(app.config_patch(access, &body).await?))
}
