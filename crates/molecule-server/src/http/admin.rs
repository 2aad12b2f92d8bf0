//! Health, readiness, metrics, admin liveness, test tokens and the event log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;
use molecule_types::dto::{
    ChannelPollerView, FleetView, Liveness, StoredEvent, SubsystemLiveness, TestToken,
};
use serde_json::json;
use uuid::Uuid;

use super::extract::{Bearer, WorkspacePath};
use crate::app::App;
use crate::error::AppResult;

pub async fn health() -> Json<molecule_types::dto::StatusReply> {
    super::ack("ok")
}

/// 200 when the database answers and no background task is stale.
pub async fn readyz(State(app): State<App>) -> impl IntoResponse {
    let db_ok = app.database_ok().await;
    let now = Utc::now();
    let stale: Vec<&str> = app
        .tasks()
        .snapshot()
        .into_iter()
        .filter(|(_, s)| s.is_stale(now, app.started_at()))
        .map(|(n, _)| n)
        .collect();
    let ready = db_ok && stale.is_empty();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(
            json!({ "ready": ready, "database": if db_ok { "ok" } else { "unreachable" }, "stale_tasks": stale }),
        ),
    )
}

pub async fn metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics_text(),
    )
}

pub async fn liveness(State(app): State<App>, bearer: Bearer) -> AppResult<Json<Liveness>> {
    app.auth_admin(bearer.creds())?;
    let now = Utc::now();
    let subsystems = app
        .tasks()
        .snapshot()
        .into_iter()
        .map(|(name, s)| {
            let view = SubsystemLiveness {
                last_tick_at: s.last_tick_at,
                seconds_ago: s
                    .last_tick_at
                    .map(|t| (now - t).num_milliseconds() as f64 / 1000.0),
                period_seconds: s.period.as_secs_f64(),
                state: s.state.as_str().to_string(),
                stale: s.is_stale(now, app.started_at()),
                panics: s.panics,
                last_error: s.last_error,
                last_duration_seconds: s.last_duration.map(|d| d.as_secs_f64()),
            };
            (name.to_string(), view)
        })
        .collect();
    let fleet = Some(FleetView {
        breaker_open: app.breaker_open(),
    });
    let channels = app
        .poller_statuses()
        .into_iter()
        .map(|(id, p)| {
            let view = ChannelPollerView {
                channel_type: p.channel_type,
                workspace_id: p.workspace_id,
                state: p.state,
                last_poll_at: p.last_poll_at,
                last_error: p.last_error,
            };
            (id.to_string(), view)
        })
        .collect();
    let replica = app
        .replica()
        .map(|(id, peers)| molecule_types::dto::ReplicaView { id, peers });
    Ok(Json(Liveness {
        subsystems,
        fleet,
        channels,
        replica,
    }))
}

pub async fn test_token(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<TestToken>> {
    let dev = app.auth_dev(bearer.creds())?;
    Ok(Json(app.test_token(dev, id.into()).await?))
}

/// `POST /admin/workspaces/:id/token`: rotate a workspace's credential
/// (admin). Every live token of the workspace is revoked; the new one is
/// returned once.
pub async fn rotate_token(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
) -> AppResult<Json<TestToken>> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok(Json(TestToken {
        auth_token: app.rotate_token(admin, id.into()).await?,
        workspace_id: id,
    }))
}

pub async fn events(State(app): State<App>, bearer: Bearer) -> AppResult<Json<Vec<StoredEvent>>> {
    let admin = app.auth_admin(bearer.creds())?;
    Ok(Json(app.event_log(admin, None).await?))
}

pub async fn events_for(
    State(app): State<App>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<StoredEvent>>> {
    let admin = app.auth_admin(bearer.creds())?;
    let Ok(id) = id.parse::<Uuid>() else {
        return Ok(Json(Vec::new()));
    };
    Ok(Json(app.event_log(admin, Some(id)).await?))
}
