//! Registry handlers (api-contract §5.4). The checks that need no
//! credential come first, as the contract orders them; then the caller
//! proves it is the workspace it names.

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
    let id = app.check_registration(&req)?;
    let agent = app.auth_agent(id, bearer.creds(), "workspace").await?;
    Ok(Json(app.register(agent, req).await?))
}

pub async fn heartbeat(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(mut hb): JsonBody<Heartbeat>,
) -> AppResult<Json<molecule_types::dto::StatusReply>> {
    let id = app.check_heartbeat(&mut hb)?;
    let agent = app.auth_agent(id, bearer.creds(), "workspace").await?;
    app.heartbeat(agent, hb).await?;
    Ok(crate::http::ack("ok"))
}

pub async fn update_card(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(req): JsonBody<UpdateCard>,
) -> AppResult<Json<molecule_types::dto::StatusReply>> {
    let id = app.check_card(&req.workspace_id, &req.agent_card)?;
    let agent = app.auth_agent(id, bearer.creds(), "workspace").await?;
    app.update_card(agent, req.agent_card).await?;
    Ok(crate::http::ack("updated"))
}

pub async fn discover(
    State(app): State<App>,
    bearer: Bearer,
    CallerHeader(caller): CallerHeader,
    Path(target): Path<String>,
) -> AppResult<Json<Discovered>> {
    let Some(caller) = caller else {
        return Err(AppError::invalid("X-Workspace-ID header is required"));
    };
    let Ok(target) = target.parse::<Uuid>() else {
        return Err(AppError::forbidden(
            "not authorized to discover this workspace",
        ));
    };
    let caller = caller
        .parse::<Uuid>()
        .map_err(|_| AppError::invalid("X-Workspace-ID must be a workspace UUID"))?;
    let caller = app.auth_agent(caller, bearer.creds(), "caller").await?;
    Ok(Json(app.discover(caller, target).await?))
}

pub async fn peers(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Vec<Peer>>> {
    let agent = app.auth_agent(id, bearer.creds(), "workspace").await?;
    Ok(Json(app.peers(agent).await?))
}

pub async fn check_access(
    State(app): State<App>,
    bearer: Bearer,
    JsonBody(req): JsonBody<CheckAccess>,
) -> AppResult<Json<AccessDecision>> {
    let (caller, target) = (req.caller_id.as_str(), req.target_id.as_str());
    app.check_access_request(caller, target)?;
    let query = app.auth_check_access(caller, bearer.creds()).await?;
    Ok(Json(AccessDecision {
        allowed: app.check_access(query, caller, target).await?,
    }))
}
