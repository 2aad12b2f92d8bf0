//! Activity, notify, session search (api-contract §5.7) and delegation
//! (§5.6). All workspace-authenticated (WA) on `:id`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use molecule_types::workspace_data::{
    ActivityEntry, Delegation, DelegationAccepted, DelegationAck, SessionHit,
};
use serde::Deserialize;

use super::extract::{Bearer, JsonBody, WorkspacePath};
use crate::app::App;
use crate::app::activity::{ActivityListQuery, ActivityReport};
use crate::app::delegation::{DelegateRequest, RecordRequest, UpdateRequest};
use crate::error::{AppError, AppResult};

pub async fn list(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    Query(q): Query<ActivityListQuery>,
) -> AppResult<Json<Vec<ActivityEntry>>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.activity_list(access, q).await?))
}

pub async fn report(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    JsonBody(r): JsonBody<ActivityReport>,
) -> AppResult<Json<molecule_types::dto::StatusReply>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    app.activity_report(access, r).await?;
    Ok(super::ack("logged"))
}

#[derive(Deserialize)]
pub struct NotifyBody {
    #[serde(default)]
    message: String,
}

pub async fn notify(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    JsonBody(b): JsonBody<NotifyBody>,
) -> AppResult<Json<molecule_types::dto::StatusReply>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    app.notify(access, &b.message).await?;
    Ok(super::ack("sent"))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    limit: Option<String>,
}

pub async fn session_search(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    Query(q): Query<SearchQuery>,
) -> AppResult<Json<Vec<SessionHit>>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(
        app.session_search(access, q.q.as_deref(), q.limit.as_deref())
            .await?,
    ))
}

pub async fn delegate(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    JsonBody(req): JsonBody<DelegateRequest>,
) -> AppResult<(StatusCode, Json<DelegationAccepted>)> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    let body = app.delegate(access, req).await?;
    // A new delegation is accepted (202); an idempotency-key hit is 200.
    let status = if body.idempotent_hit.is_some() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(body)))
}

pub async fn delegations(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<Vec<Delegation>>> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(app.delegations(access).await?))
}

pub async fn record_delegation(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    JsonBody(req): JsonBody<RecordRequest>,
) -> AppResult<(StatusCode, Json<DelegationAck>)> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(app.record_delegation(access, req).await?),
    ))
}

pub async fn update_delegation(
    State(app): State<App>,
    bearer: Bearer,
    Path((raw_id, delegation_id)): Path<(String, String)>,
    JsonBody(req): JsonBody<UpdateRequest>,
) -> AppResult<Json<DelegationAck>> {
    let id = raw_id
        .parse()
        .map_err(|_| AppError::not_found("workspace not found"))?;
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(Json(
        app.update_delegation(access, &delegation_id, req).await?,
    ))
}
