//! Secret handlers (api-contract §5.10): workspace secrets (WA) and global
//! secrets (AA). Responses never carry values except `…/secrets/values`.

use axum::Json;
use axum::extract::{Path, State};
use molecule_types::workspace_data::{KeyStatus, ModelSetting, SecretEntry, SetSecret};
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::app::App;
use crate::error::{AppError, AppResult};
use crate::http::extract::{Bearer, JsonBody};

fn key_status(status: &str, key: String, scope: Option<&str>) -> KeyStatus {
    KeyStatus {
        status: status.into(),
        key,
        scope: scope.map(str::to_string),
    }
}

/// Secrets routes check the id up front, as the reference does.
fn ws_id(raw: &str) -> AppResult<Uuid> {
    raw.parse()
        .map_err(|_| AppError::invalid("invalid workspace ID"))
}

pub async fn list(
    State(app): State<App>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<SecretEntry>>> {
    let ws = ws_id(&id)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(
        app.secret_list(access)
            .await?
            .iter()
            .map(|s| s.view())
            .collect(),
    ))
}

pub async fn values(
    State(app): State<App>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> AppResult<Json<BTreeMap<String, String>>> {
    let ws = ws_id(&id)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.secret_values_view(access).await?))
}

pub async fn set(
    State(app): State<App>,
    bearer: Bearer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<SetSecret>,
) -> AppResult<Json<KeyStatus>> {
    let ws = ws_id(&id)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    app.secret_set(access, &req.key, &req.value).await?;
    Ok(Json(key_status("saved", req.key, None)))
}

pub async fn delete(
    State(app): State<App>,
    bearer: Bearer,
    Path((id, key)): Path<(String, String)>,
) -> AppResult<Json<KeyStatus>> {
    let ws = ws_id(&id)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    app.secret_delete(access, &key).await?;
    Ok(Json(key_status("deleted", key, None)))
}

pub async fn model(
    State(app): State<App>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> AppResult<Json<ModelSetting>> {
    let ws = ws_id(&id)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.secret_model(access).await?))
}

pub async fn global_list(
    State(app): State<App>,
    bearer: Bearer,
) -> AppResult<Json<Vec<SecretEntry>>> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok(Json(
        app.secret_list_global(admin)
            .await?
            .iter()
            .map(|s| s.view())
            .collect(),
    ))
}

pub async fn global_set(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(req): JsonBody<SetSecret>,
) -> AppResult<Json<KeyStatus>> {
    let admin = app.auth_admin(bearer.creds())?;
    app.secret_set_global(admin, &req.key, &req.value).await?;
    Ok(Json(key_status("saved", req.key, Some("global"))))
}

pub async fn global_delete(
    State(app): State<App>,
    bearer: Bearer,
    Path(key): Path<String>,
) -> AppResult<Json<KeyStatus>> {
    let admin = app.auth_admin(bearer.creds())?;
    app.secret_delete_global(admin, &key).await?;
    Ok(Json(key_status("deleted", key, Some("global"))))
}
