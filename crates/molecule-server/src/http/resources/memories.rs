//! Memory handlers (api-contract §5.9) and approvals (§5.11).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use crate::app::App;
use crate::error::AppResult;
use crate::http::extract::{Bearer, JsonBody, WorkspacePath, workspace_and};
use molecule_types::workspace_data::{
    Approval, ApprovalStatus, CommitMemory, CreateApproval, DecideApproval, KeyStatus, Memory,
    MemoryCommitted, MemoryEntry, MemorySearch, PendingApproval, SetMemoryEntry,
};

pub async fn kv_list(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
) -> AppResult<Json<Vec<MemoryEntry>>> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.memory_kv_list(access).await?))
}

pub async fn kv_get(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
) -> AppResult<Json<MemoryEntry>> {
    let (ws, key) = workspace_and(raw)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.memory_kv_get(access, &key).await?))
}

pub async fn kv_set(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
    JsonBody(req): JsonBody<SetMemoryEntry>,
) -> AppResult<Json<KeyStatus>> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.memory_kv_set(access, req).await?))
}

pub async fn kv_delete(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
) -> AppResult<Json<molecule_types::dto::StatusReply>> {
    let (ws, key) = workspace_and(raw)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    app.memory_kv_delete(access, &key).await?;
    Ok(crate::http::ack("deleted"))
}

pub async fn commit(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
    JsonBody(req): JsonBody<CommitMemory>,
) -> AppResult<(StatusCode, Json<MemoryCommitted>)> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok((
        StatusCode::CREATED,
        Json(app.memory_commit(access, req).await?),
    ))
}

pub async fn search(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
    Query(q): Query<MemorySearch>,
) -> AppResult<Json<Vec<Memory>>> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.memory_search(access, q).await?))
}

pub async fn delete(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
) -> AppResult<Json<molecule_types::dto::StatusReply>> {
    let (ws, id) = workspace_and(raw)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    app.memory_delete(access, id.parse().ok()).await?;
    Ok(crate::http::ack("deleted"))
}

pub async fn approval_create(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
    JsonBody(req): JsonBody<CreateApproval>,
) -> AppResult<(StatusCode, Json<ApprovalStatus>)> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok((
        StatusCode::CREATED,
        Json(app.approval_create(access, req).await?),
    ))
}

pub async fn approval_list(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
) -> AppResult<Json<Vec<Approval>>> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.approval_list(access).await?))
}

/// Who may decide depends on the mode and the approval's requester.
pub async fn approval_decide(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
    JsonBody(req): JsonBody<DecideApproval>,
) -> AppResult<Json<ApprovalStatus>> {
    let (ws, id) = workspace_and(raw)?;
    let decider = app.auth_approval_decider(ws, bearer.creds()).await?;
    Ok(Json(
        app.approval_decide(decider, id.parse().ok(), req).await?,
    ))
}

pub async fn approvals_pending(
    State(app): State<App>,
    bearer: Bearer,
) -> AppResult<Json<Vec<PendingApproval>>> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok(Json(app.approval_pending(admin).await?))
}
