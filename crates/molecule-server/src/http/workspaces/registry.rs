//! Registry handlers (api-contract §5.4).

use axum::Json;
use axum::extract::{Path, State};
use molecule_types::dto::{
    AccessDecision, CheckAccess, Discovered, Heartbeat, Peer, RegisterRequest, RegisterResponse,
    UpdateCard,
};
use uuid::Uuid;

use crate::app::App;
use crate::error::{AppError, AppResult};
use crate::http::extract::{Bearer, CallerHeader, JsonBody, WorkspacePath};

pub async fn register(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> AppResult<Json<RegisterResponse>> {
    Ok(Json(app.register(req, bearer.creds()).await?))
}

pub async fn heartbeat(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(hb): JsonBody<Heartbeat>,
) -> AppResult<Json<molecule_types::dto::StatusReply>> {
    app.heartbeat(hb, bearer.creds()).await?;
    Ok(crate::http::ack("ok"))
}

pub async fn update_card(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(req): JsonBody<UpdateCard>,
) -> AppResult<Json<molecule_types::dto::StatusReply>> {
    app.update_card(&req.workspace_id, req.agent_card, bearer.creds())
        .await?;
    Ok(crate::http::ack("updated"))
}

pub async fn discover(
    State(app): State<App>,
    bearer: Bearer,
    CallerHeader(caller): CallerHeader,
    Path(target): Path<String>,
) -> AppResult<Json<Discovered>> {
    if caller.is_none() {
        return Err(AppError::invalid("X-Workspace-ID header is required"));
    }
    let Ok(target) = target.parse::<Uuid>() else {
        return Err(AppError::forbidden(
            "not authorized to discover this workspace",
        ));
    };
    Ok(Json(
        app.discover(caller.as_deref(), target, bearer.creds())
            .await?,
    ))
}

pub async fn peers(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Vec<Peer>>> {
    Ok(Json(app.peers(id, bearer.creds()).await?))
}

pub async fn check_access(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(req): JsonBody<CheckAccess>,
) -> AppResult<Json<AccessDecision>> {
    Ok(Json(AccessDecision {
        allowed: app
            .check_access(&req.caller_id, &req.target_id, bearer.creds())
            .await?,
    }))
}
