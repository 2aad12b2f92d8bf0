//! `POST /workspaces/:id/a2a` (api-contract §5.5): the HTTP face of the
//! proxy in `app::a2a`. Unary answers are passed through with the agent's
//! status; streams are relayed chunk by chunk, unbuffered.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

use super::extract::{WorkspacePath, bearer_from, network_of, read_capped};
use crate::app::App;
use crate::app::a2a::{
    A2aError, BUSY_RETRY_AFTER, Caller, ProxyBody, ProxyRequest, X_WORKSPACE_ID, a2a_headers_of,
};
use crate::app::auth::{Credentials, Network};
use crate::error::AppError;

const X_TIMEOUT: HeaderName = HeaderName::from_static("x-timeout");

/// Longest deadline a client may ask for with `X-Timeout`.
const MAX_CLIENT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// `X-Timeout: <seconds>`: a positive integer sets the deadline; 0 or
/// anything unparsable is ignored (the defaults apply).
fn client_timeout(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers.get(X_TIMEOUT)?.to_str().ok()?.trim().parse().ok()?;
    (secs > 0).then(|| Duration::from_secs(secs).min(MAX_CLIENT_TIMEOUT))
}

pub async fn proxy(
    State(app): State<App>,
    WorkspacePath(target): WorkspacePath,
    req: axum::extract::Request,
) -> Response {
    // The whole request, not `HeaderMap` + `Body`: that extractor clones
    // every header.
    let (parts, body) = req.into_parts();
    let network = network_of(&parts.extensions);
    match handle(app, target, parts.headers, network, body).await {
        Ok(resp) => resp,
        Err(e) => error_response(e),
    }
}

async fn handle(
    app: App,
    target: uuid::Uuid,
    headers: HeaderMap,
    network: Network,
    body: Body,
) -> Result<Response, A2aError> {
    let caller = Caller::from_header(headers.get(X_WORKSPACE_ID).and_then(|v| v.to_str().ok()))?;
    let body = read_capped(&headers, body).await.map_err(|e| match e {
        AppError::TooLarge(_) => A2aError::TooLarge,
        AppError::InvalidRequest(m) => A2aError::BadRequest(m),
        other => A2aError::Internal(other.to_string()),
    })?;
    let bearer = bearer_from(&headers);
    let creds = Credentials {
        bearer: bearer.as_deref(),
        network,
    };
    let route = app.auth_a2a(caller, target, creds).await?;
    let resp = app
        .proxy(ProxyRequest {
            route,
            body,
            a2a_headers: a2a_headers_of(&headers),
            timeout: client_timeout(&headers),
            proxy_url: Some(proxy_url(&app, &headers, target)),
            trace_parent: headers
                .get(molecule_telemetry::TRACEPARENT)
                .and_then(|v| v.to_str().ok())
                .and_then(molecule_telemetry::SpanContext::parse),
        })
        .await?;
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = match resp.body {
        ProxyBody::Full(bytes) => Response::new(Body::from(bytes)),
        ProxyBody::Stream(rx) => {
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
            });
            let mut r = Response::new(Body::from_stream(stream));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r.headers_mut()
                .insert("x-accel-buffering", HeaderValue::from_static("no"));
            r
        }
    };
    *out.status_mut() = status;
    if let Some(ct) = resp.content_type {
        out.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    for (k, v) in resp.a2a_headers {
        out.headers_mut().insert(k, v);
    }
    Ok(out)
}

/// `GET /workspaces/:id/a2a/.well-known/agent-card.json` (and
/// `agent.json`): the target's card, its `url` the proxy URL, under the
/// proxy's own caller rules.
pub async fn card(
    State(app): State<App>,
    WorkspacePath(target): WorkspacePath,
    req: axum::extract::Request,
) -> Response {
    let (parts, _) = req.into_parts();
    let network = network_of(&parts.extensions);
    let headers = parts.headers;
    let answer = async {
        let caller =
            Caller::from_header(headers.get(X_WORKSPACE_ID).and_then(|v| v.to_str().ok()))?;
        let bearer = bearer_from(&headers);
        let creds = Credentials {
            bearer: bearer.as_deref(),
            network,
        };
        let route = app.auth_a2a(caller, target, creds).await?;
        app.proxied_card(&route, &proxy_url(&app, &headers, target))
            .await
    };
    match answer.await {
        Ok(card) => axum::Json(card).into_response(),
        Err(e) => error_response(e),
    }
}

/// The URL a client reaches `target`'s proxy at: under the configured
/// public URL, or the `Host` the request came to.
fn proxy_url(app: &App, headers: &HeaderMap, target: uuid::Uuid) -> String {
    let base = match &app.config().platform_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            format!("http://{host}")
        }
    };
    format!("{base}/workspaces/{target}/a2a")
}

/// The contract's error bodies and statuses.
pub fn error_response(e: A2aError) -> Response {
    let (status, body) = match &e {
        A2aError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "error": m })),
        A2aError::Rpc { id, code, message } => (
            StatusCode::OK,
            json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }),
        ),
        A2aError::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, json!({ "error": m })),
        A2aError::AccessDenied => (StatusCode::FORBIDDEN, json!({ "error": e.to_string() })),
        A2aError::NotFound => (StatusCode::NOT_FOUND, json!({ "error": e.to_string() })),
        A2aError::NoUrl { status } | A2aError::NotServing { status } => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": e.to_string(), "status": status }),
        ),
        A2aError::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({ "error": e.to_string() }),
        ),
        A2aError::Busy => {
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({
                    "error": e.to_string(),
                    "busy": true,
                    "retry_after": BUSY_RETRY_AFTER,
                })),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_AFTER));
            return r;
        }
        A2aError::Restarting => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": e.to_string(), "restarting": true }),
        ),
        A2aError::Unreachable(cause) => {
            tracing::warn!(error = %cause, "a2a: agent unreachable");
            (StatusCode::BAD_GATEWAY, json!({ "error": e.to_string() }))
        }
        // The reason was logged where the connection was refused.
        A2aError::Refused(_) => (StatusCode::BAD_GATEWAY, json!({ "error": e.to_string() })),
        A2aError::ResponseTooLarge | A2aError::ReadFailed(_) => {
            (StatusCode::BAD_GATEWAY, json!({ "error": e.to_string() }))
        }
        A2aError::Internal(cause) => {
            tracing::error!(error = %cause, "a2a proxy failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": "proxy failed" }),
            )
        }
    };
    let mut r = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// `?since=&limit=`: the only parameters forwarded to the agent.
#[derive(Debug, serde::Deserialize)]
pub struct TranscriptQuery {
    since: Option<String>,
    limit: Option<String>,
}

/// `GET /workspaces/:id/transcript`: the agent's transcript, its status,
/// content type and body passed through (`app::a2a::transcript`).
pub async fn transcript(
    State(app): State<App>,
    bearer: super::extract::Bearer,
    WorkspacePath(id): WorkspacePath,
    axum::extract::Query(q): axum::extract::Query<TranscriptQuery>,
) -> Result<Response, AppError> {
    use crate::app::a2a::transcript::TranscriptError;
    let access = app.auth_workspace(id, bearer.creds()).await?;
    let mut query = Vec::new();
    if let Some(since) = q.since {
        query.push(("since", since));
    }
    if let Some(limit) = q.limit {
        query.push(("limit", limit));
    }
    let error = |status: StatusCode, message: &str| {
        (status, axum::Json(json!({ "error": message }))).into_response()
    };
    Ok(match app.transcript(access, &query).await {
        Ok(t) => {
            let status = StatusCode::from_u16(t.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut out = (status, t.body).into_response();
            if let Some(ct) = t.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                out.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            out
        }
        Err(TranscriptError::NotFound) => error(StatusCode::NOT_FOUND, "workspace not found"),
        Err(TranscriptError::NoUrl) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "workspace has no URL")
        }
        Err(TranscriptError::InvalidUrl) => error(StatusCode::BAD_REQUEST, "invalid workspace URL"),
        Err(TranscriptError::NotAllowed) => {
            error(StatusCode::BAD_REQUEST, "workspace URL not allowed")
        }
        Err(TranscriptError::Unreachable(cause)) => {
            tracing::warn!(workspace_id = %id, %cause, "transcript: agent unreachable");
            error(StatusCode::BAD_GATEWAY, "workspace unreachable")
        }
    })
}

/// `GET /workspaces/:id/traces`: the trace API's answer, or `[]` when none
/// is configured or it cannot be reached (`app::a2a::traces`).
pub async fn traces(
    State(app): State<App>,
    bearer: super::extract::Bearer,
    WorkspacePath(id): WorkspacePath,
) -> Result<Response, AppError> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    Ok(match app.traces(access).await {
        Some((status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut out = (status, body).into_response();
            out.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            out
        }
        None => axum::Json(json!([])).into_response(),
    })
}
