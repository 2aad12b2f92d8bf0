//! Org content handlers: agent records (api-contract §5.13), templates,
//! files and shared context (§5.14) and the canvas viewport (§5.18).

pub mod plugins;

use axum::Json;
use axum::extract::State;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use molecule_types::content::{
    AgentAssigned, AgentModel, AgentMoved, AgentRemoved, AgentReplaced, Bundle, BundleImported,
    Collapsed, Expanded, FileContent, FileEntryView, FilesReplaced, ImportTemplate, MoveAgent,
    OrgImport, OrgImported, OrgTemplateSummary, ReplaceFiles, SharedFile, TemplateImported,
    TemplateSummary, ViewportView, WriteFile,
};
use molecule_types::dto::StatusReply;
use serde_json::{Value, json};

use crate::app::App;
use crate::error::AppResult;
use crate::http::extract::{Bearer, CONTENT_BODY, JsonBody, WorkspacePath, workspace_and};

pub async fn agent_assign(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    JsonBody(req): JsonBody<AgentModel>,
) -> AppResult<(StatusCode, Json<AgentAssigned>)> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok((
        StatusCode::CREATED,
        Json(app.agent_assign(access, &req.model).await?),
    ))
}

pub async fn agent_replace(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    JsonBody(req): JsonBody<AgentModel>,
) -> AppResult<Json<AgentReplaced>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.agent_replace(access, &req.model).await?))
}

pub async fn agent_remove(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<AgentRemoved>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.agent_remove(access).await?))
}

pub async fn agent_move(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    JsonBody(req): JsonBody<MoveAgent>,
) -> AppResult<Json<AgentMoved>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(
        app.agent_move(access, &req.target_workspace_id).await?,
    ))
}

pub async fn viewport_get(State(app): State<App>, bearer: Bearer) -> AppResult<Json<ViewportView>> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok(Json(app.viewport_get(admin).await))
}

pub async fn viewport_put(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(v): JsonBody<ViewportView>,
) -> AppResult<Json<StatusReply>> {
    let admin = app.auth_admin(bearer.creds())?;
    app.viewport_put(admin, v).await?;
    Ok(crate::http::ack("saved"))
}

pub async fn templates(
    State(app): State<App>,
    bearer: Bearer,
) -> AppResult<Json<Vec<TemplateSummary>>> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok(Json(app.template_list(admin).await))
}

pub async fn template_import(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(req): JsonBody<ImportTemplate, CONTENT_BODY>,
) -> AppResult<(StatusCode, Json<TemplateImported>)> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok((
        StatusCode::CREATED,
        Json(app.template_import(admin, req).await?),
    ))
}

#[derive(serde::Deserialize)]
pub struct ListQuery {
    root: Option<String>,
    path: Option<String>,
    depth: Option<String>,
}

pub async fn files_list(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    Query(q): Query<ListQuery>,
) -> AppResult<Json<Vec<FileEntryView>>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(
        app.files_list(
            access,
            q.root.as_deref(),
            q.path.as_deref(),
            q.depth.as_deref(),
        )
        .await?,
    ))
}

#[derive(serde::Deserialize)]
pub struct RootQuery {
    root: Option<String>,
}

pub async fn file_read(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
    Query(q): Query<RootQuery>,
) -> AppResult<Json<FileContent>> {
    let (id, path) = workspace_and(raw)?;
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.file_read(access, &path, q.root.as_deref()).await?))
}

pub async fn file_write(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
    JsonBody(req): JsonBody<WriteFile, CONTENT_BODY>,
) -> AppResult<Json<Value>> {
    let (id, path) = workspace_and(raw)?;
    let access = app.auth_workspace(id, bearer.creds()).await?;
    let path = app.file_write(access, &path, req.content).await?;
    Ok(Json(json!({ "status": "saved", "path": path })))
}

pub async fn file_delete(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let (id, path) = workspace_and(raw)?;
    let access = app.auth_workspace(id, bearer.creds()).await?;
    let path = app.file_delete(access, &path).await?;
    Ok(Json(json!({ "status": "deleted", "path": path })))
}

/// `DELETE /workspaces/:id/files/` (nothing after the slash): empties
/// `/configs`, as the contract's empty path does.
pub async fn files_clear(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Value>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    let path = app.file_delete(access, "").await?;
    Ok(Json(json!({ "status": "deleted", "path": path })))
}

pub async fn files_replace(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    JsonBody(req): JsonBody<ReplaceFiles, CONTENT_BODY>,
) -> AppResult<Json<FilesReplaced>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.files_replace(access, req.files).await?))
}

pub async fn shared_context(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Vec<SharedFile>>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.shared_context(access).await?))
}

pub async fn expand(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Expanded>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.team_expand(access).await?))
}

pub async fn collapse(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Collapsed>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.team_collapse(access).await?))
}

pub async fn org_templates(
    State(app): State<App>,
    bearer: Bearer,
) -> AppResult<Json<Vec<OrgTemplateSummary>>> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok(Json(app.org_templates(admin).await))
}

/// 201 when the whole tree was created; 207 with what was created up to
/// the node that failed, and why.
pub async fn org_import(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(req): JsonBody<OrgImport>,
) -> AppResult<(StatusCode, Json<OrgImported>)> {
    let admin = app.auth_admin(bearer.creds())?;
    let (complete, imported) = app.org_import(admin, req).await?;
    let status = if complete {
        StatusCode::CREATED
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((status, Json(imported)))
}

pub async fn bundle_export(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Bundle>> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok(Json(app.bundle_export(admin, id.into()).await?))
}

pub async fn bundle_import(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(bundle): JsonBody<Bundle, CONTENT_BODY>,
) -> AppResult<(StatusCode, Json<BundleImported>)> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok((
        StatusCode::CREATED,
        Json(app.bundle_import(admin, bundle).await?),
    ))
}
