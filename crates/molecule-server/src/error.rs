//! The one domain error of the server and the one place that turns it into
//! an HTTP response (`{"error": "..."}` with the contract's status code).
//! 5xx bodies never carry internals: the cause is logged, the client gets a
//! fixed text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use molecule_types::WorkspaceStatus;
use serde_json::{Value, json};
use uuid::Uuid;

/// Why a request is refused for now (and with which status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// The caller wrote more than its budget lately: 429.
    OverBudget,
    /// The platform cannot take it now (a full queue, a failed batch): 503.
    Overloaded,
}

/// Every way a request can fail, as domain variants with typed detail; the
/// status code and body of each are chosen in [`AppError::status`] and
/// [`IntoResponse`] below, and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("gone: {0}")]
    Gone(String),
    #[error("payload too large: {0}")]
    TooLarge(String),
    /// The request clashes with what exists (a name in use, a paused
    /// parent): 409 `{"error"}`.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An outside API the request needed (a chat platform) refused or
    /// failed: 502 `{"error"}` with what it said (no URL, no token).
    #[error("upstream: {0}")]
    Upstream(String),
    /// A template of that directory name exists: 409 `{"error", "id"}`.
    #[error("template {id} already exists")]
    TemplateExists { id: String },
    /// Deleting a workspace that has children needs `?confirm=true`: 409
    /// with the children.
    #[error("confirmation required to delete {} child workspace(s)", children.len())]
    ConfirmationRequired { children: Vec<(Uuid, String)> },
    /// `GET /workspaces/:id/state` of a workspace that is gone: 404 with
    /// `deleted: true` (and `status: removed` when its row remains).
    #[error("workspace {id} is deleted")]
    WorkspaceDeleted { id: Uuid, row_remains: bool },
    /// The workspace cannot be reached in its current status: 503 with it.
    #[error("workspace not available ({status})")]
    WorkspaceUnavailable { status: WorkspaceStatus },
    /// A part of the platform this needs is not there (no runtime backend):
    /// 503 `{"error"}`.
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    /// Stored secrets that the current key cannot open: 500 with their names.
    #[error("failed to decrypt secrets {failed_keys:?}")]
    Undecryptable { failed_keys: Vec<String> },
    /// Refused for now: `{"error", "retry_after"}` and a `Retry-After`
    /// header, like the rate limiter's answer.
    #[error("{message} ({why:?}, retry after {retry_after} s)")]
    RetryLater {
        why: Pressure,
        message: &'static str,
        retry_after: u64,
    },
    /// A plugin source could not be fetched: 404 (not there), 504 (the
    /// fetch deadline passed) or 502 (anything else), `{error, source}`.
    #[error("plugin fetch from {origin} failed: {message}")]
    PluginFetch {
        failure: FetchFailureKind,
        message: String,
        /// The source as given (`source` in the body).
        origin: String,
    },
    /// A source with a scheme there is no fetcher for: 400 with the ones
    /// there are.
    #[error("unknown plugin source scheme {scheme:?}")]
    UnknownPluginScheme {
        scheme: String,
        available: &'static [&'static str],
    },
    /// A download whose source resolves to another plugin than the path
    /// names: 400 with both.
    #[error("plugin source resolves to {resolved}, not {requested}")]
    PluginNameMismatch { resolved: String, requested: String },
    /// Something broke on our side. `public` is what the client sees (the
    /// contract's text, e.g. `query failed`); `cause` is only logged.
    #[error("internal error ({public}): {cause}")]
    Internal { public: &'static str, cause: String },
}

pub type AppResult<T> = Result<T, AppError>;

/// How a plugin fetch failed (the status of [`AppError::PluginFetch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFailureKind {
    NotFound,
    Timeout,
    Failed,
}

impl AppError {
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(msg.into())
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidRequest(msg.into())
    }
    pub fn unauthenticated(msg: impl Into<String>) -> Self {
        Self::Unauthenticated(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::Forbidden(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::Conflict(msg.into())
    }
    /// Wrap a store (or other internal) failure under the contract's public text.
    pub fn internal(public: &'static str) -> impl FnOnce(molecule_store::StoreError) -> Self {
        move |e| Self::Internal {
            public,
            cause: e.to_string(),
        }
    }
    pub fn retry_later(why: Pressure, message: &'static str, retry_after: u64) -> Self {
        Self::RetryLater {
            why,
            message,
            retry_after,
        }
    }
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) | Self::WorkspaceDeleted { .. } => StatusCode::NOT_FOUND,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Gone(_) => StatusCode::GONE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict(_) | Self::ConfirmationRequired { .. } | Self::TemplateExists { .. } => {
                StatusCode::CONFLICT
            }
            Self::WorkspaceUnavailable { .. }
            | Self::Unavailable(_)
            | Self::RetryLater {
                why: Pressure::Overloaded,
                ..
            } => StatusCode::SERVICE_UNAVAILABLE,
            Self::RetryLater {
                why: Pressure::OverBudget,
                ..
            } => StatusCode::TOO_MANY_REQUESTS,
            Self::PluginFetch { failure, .. } => match failure {
                FetchFailureKind::NotFound => StatusCode::NOT_FOUND,
                FetchFailureKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
                FetchFailureKind::Failed => StatusCode::BAD_GATEWAY,
            },
            Self::UnknownPluginScheme { .. } | Self::PluginNameMismatch { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Undecryptable { .. } | Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            Self::RetryLater { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let body = match self {
            Self::NotFound(m)
            | Self::InvalidRequest(m)
            | Self::Unauthenticated(m)
            | Self::Forbidden(m)
            | Self::Gone(m)
            | Self::TooLarge(m)
            | Self::Upstream(m)
            | Self::Conflict(m) => json!({ "error": m }),
            Self::TemplateExists { id } => {
                json!({ "error": "template already exists", "id": id })
            }
            Self::ConfirmationRequired { children } => {
                let list: Vec<Value> = children
                    .iter()
                    .map(|(id, name)| json!({ "id": id, "name": name }))
                    .collect();
                json!({
                    "status": "confirmation_required",
                    "message": format!("workspace has {} child workspace(s); repeat with ?confirm=true to delete them all", list.len()),
                    "children_count": list.len(),
                    "children": list,
                })
            }
            Self::WorkspaceDeleted { id, row_remains } => {
                if row_remains {
                    json!({ "workspace_id": id, "status": "removed", "deleted": true })
                } else {
                    json!({ "workspace_id": id, "deleted": true })
                }
            }
            Self::WorkspaceUnavailable { status } => {
                json!({ "error": "workspace not available", "status": status })
            }
            Self::Unavailable(m) => json!({ "error": m }),
            Self::Undecryptable { failed_keys } => {
                json!({ "error": "failed to decrypt secrets", "failed_keys": failed_keys })
            }
            Self::RetryLater {
                message,
                retry_after,
                ..
            } => json!({ "error": message, "retry_after": retry_after }),
            Self::PluginFetch {
                message, origin, ..
            } => json!({ "error": message, "source": origin }),
            Self::UnknownPluginScheme { scheme, available } => json!({
                "error": format!("unknown plugin source scheme {scheme:?}"),
                "available_schemes": available,
            }),
            Self::PluginNameMismatch {
                resolved,
                requested,
            } => json!({
                "error": "the source resolves to another plugin",
                "resolved_name": resolved,
                "requested_name": requested,
            }),
            Self::Internal { public, cause } => {
                tracing::error!(error = %cause, public, "request failed");
                json!({ "error": public })
            }
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
