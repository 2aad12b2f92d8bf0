//! `POST /webhooks/github` and `POST /webhooks/github/:id`: the delivery's
//! headers and raw body (the signature covers the exact bytes) handed to
//! `App::github_webhook`; the agent's answer comes back as the proxy's
//! would.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::a2a::error_response;
use super::extract::{WorkspacePath, header_str, read_capped};
use crate::app::App;
use crate::app::webhooks::{GithubDelivery, WebhookError, WebhookOutcome};

pub async fn github(State(app): State<App>, req: Request) -> Response {
    deliver(app, None, req).await
}

pub async fn github_for(
    State(app): State<App>,
    WorkspacePath(id): WorkspacePath,
    req: Request,
) -> Response {
    deliver(app, Some(id), req).await
}

async fn deliver(app: App, workspace: Option<uuid::Uuid>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_capped(&parts.headers, body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let h = |name: &str| header_str(&parts.headers, name);
    let delivery = GithubDelivery {
        signature: h("x-hub-signature-256"),
        event: h("x-github-event"),
        delivery_id: h("x-github-delivery"),
        body: &body,
        workspace,
    };
    match app.github_webhook(delivery).await {
        Ok(WebhookOutcome::Ignored(reason)) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "status": "ignored", "reason": reason })),
        )
            .into_response(),
        Ok(WebhookOutcome::Forwarded(reply)) => Response::builder()
            .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(reply.body))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Err(WebhookError::App(e)) => e.into_response(),
        Err(WebhookError::A2a(e)) => error_response(e),
    }
}
