//! Channel routes (api-contract §5.17): adapters, a workspace's channels
//! (CRUD, send, test), discover, and the platforms' webhooks.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{Bearer, JsonBody, WorkspacePath, header_str, read_capped, workspace_and};
use crate::app::App;
use crate::app::channels::webhook::ChannelDelivery;
use crate::error::{AppError, AppResult};

/// `/workspaces/:id/channels/:cid`: both ids (a non-UUID names nothing).
fn ids(raw: (String, String)) -> AppResult<(Uuid, Uuid)> {
    let (ws, cid) = workspace_and(raw)?;
    let cid = cid
        .parse()
        .map_err(|_| AppError::not_found("channel not found"))?;
    Ok((ws, cid))
}

pub async fn adapters(State(app): State<App>) -> Json<Value> {
    Json(app.channel_adapters())
}

pub async fn list(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
) -> AppResult<Json<Value>> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.channel_list(access).await?))
}

pub async fn create(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(ws): WorkspacePath,
    JsonBody(body): JsonBody<Value>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok((
        StatusCode::CREATED,
        Json(app.channel_create(access, &body).await?),
    ))
}

pub async fn update(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> AppResult<Json<Value>> {
    let (ws, cid) = ids(raw)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.channel_update(access, cid, &body).await?))
}

pub async fn delete(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let (ws, cid) = ids(raw)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    Ok(Json(app.channel_delete(access, cid).await?))
}

pub async fn send(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> AppResult<Json<Value>> {
    let (ws, cid) = ids(raw)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    let text = body["text"]
        .as_str()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| AppError::invalid("text is required"))?;
    app.channel_send(access, cid, text).await?;
    Ok(Json(json!({ "status": "sent" })))
}

pub async fn test(
    State(app): State<App>,
    bearer: Bearer,
    Path(raw): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let (ws, cid) = ids(raw)?;
    let access = app.auth_workspace(ws, bearer.creds()).await?;
    let text = "✅ Test message from Molecule: this channel is connected.";
    app.channel_send(access, cid, text).await?;
    Ok(Json(
        json!({ "status": "ok", "message": "test message sent" }),
    ))
}

pub async fn discover(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(body): JsonBody<Value>,
) -> AppResult<Json<Value>> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok(Json(app.channel_discover(admin, &body).await?))
}

pub async fn webhook(State(app): State<App>, Path(kind): Path<String>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_capped(&parts.headers, body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let h = |name: &str| header_str(&parts.headers, name);
    let delivery = ChannelDelivery {
        kind: &kind,
        body: &body,
        telegram_secret: h("x-telegram-bot-api-secret-token"),
        slack_signature: h("x-slack-signature"),
        slack_timestamp: h("x-slack-request-timestamp"),
    };
    match app.channel_webhook(delivery).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}
