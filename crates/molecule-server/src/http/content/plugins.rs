//! Plugin routes (api-contract §5.15): the registry, and per workspace the
//! installed plugins, what is available, compatibility, install, uninstall
//! and download. The work is `app::content::plugins`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::app::content::plugins::source::SCHEMES;
use crate::app::content::plugins::{Compatibility, Installed, Manifest};
use crate::error::{AppError, AppResult};
use crate::http::extract::{Bearer, JsonBody, WorkspacePath, workspace_and};

/// `POST …/plugins` bodies are small (`PLUGIN_INSTALL_BODY_MAX_BYTES`).
const INSTALL_BODY: usize = 64 << 10;

#[derive(Deserialize)]
pub struct RuntimeQuery {
    runtime: Option<String>,
}

/// `GET /plugins` (open).
pub async fn registry(
    State(app): State<App>,
    Query(q): Query<RuntimeQuery>,
) -> AppResult<Json<Vec<Manifest>>> {
    let runtime = q
        .runtime
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    Ok(Json(app.plugin_registry(runtime).await?))
}

/// `GET /plugins/sources` (open).
pub async fn sources() -> Json<Value> {
    Json(json!({ "schemes": SCHEMES }))
}

pub async fn installed(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Vec<Installed>>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.plugins_installed(access).await?))
}

pub async fn available(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Vec<Manifest>>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.plugins_available(access).await?))
}

pub async fn compatibility(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    Query(q): Query<RuntimeQuery>,
) -> AppResult<Json<Compatibility>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    let runtime = q.runtime.unwrap_or_default();
    Ok(Json(app.plugins_compatibility(access, &runtime).await?))
}

#[derive(Deserialize)]
pub struct InstallRequest {
    #[serde(default)]
    source: String,
}

pub async fn install(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    JsonBody(req): JsonBody<InstallRequest, INSTALL_BODY>,
) -> AppResult<Json<Value>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    let admin = app.auth_admin(bearer.creds()).ok();
    let (plugin, source) = app.plugin_install(access, admin, &req.source).await?;
    Ok(Json(
        json!({ "status": "installed", "plugin": plugin, "source": source }),
    ))
}

pub async fn uninstall(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let (id, name) = workspace_and(raw)?;
    let access = app.auth_workspace(id, bearer.creds()).await?;
    app.plugin_uninstall(access, &name).await?;
    Ok(Json(json!({ "status": "uninstalled", "plugin": name })))
}

#[derive(Deserialize)]
pub struct DownloadQuery {
    source: Option<String>,
}

pub async fn download(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
    Query(q): Query<DownloadQuery>,
) -> AppResult<Response> {
    let (id, name) = workspace_and(raw)?;
    let access = app.auth_workspace(id, bearer.creds()).await?;
    let admin = app.auth_admin(bearer.creds()).ok();
    let archive = app
        .plugin_download(access, admin, &name, q.source.as_deref())
        .await?;
    let header_of = |v: &str| {
        HeaderValue::from_str(v)
            .map_err(|_| AppError::invalid("source is not a valid header value"))
    };
    let disposition = header_of(&format!("attachment; filename=\"{}.tar.gz\"", archive.name))?;
    let name = header_of(&archive.name)?;
    let source = header_of(&archive.source)?;
    let mut resp = archive.tar_gz.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert("x-plugin-name", name);
    h.insert("x-plugin-source", source);
    Ok(resp)
}
