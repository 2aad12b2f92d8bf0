//! The one domain error of the server and the one place that turns it into
//! an HTTP response (`{"error": "..."}` with the contract's status code).
//! 5xx bodies never carry internals: the cause is logged, the client gets a
//! fixed text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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
    /// A response whose body carries more than `error` (409 confirmation,
    /// 503 with the workspace status, 404 of `/state`).
    #[error("{status}: {body}")]
    WithBody { status: StatusCode, body: Value },
    /// Refused for now (429 over a budget, 503 when the platform cannot
    /// take it): `{"error", "retry_after"}` and a `Retry-After` header,
    /// like the rate limiter's answer.
    #[error("{status}: {message} (retry after {retry_after} s)")]
    RetryLater {
        status: StatusCode,
        message: &'static str,
        retry_after: u64,
    },
    /// Something broke on our side. `public` is what the client sees (the
    /// contract's text, e.g. `query failed`); `cause` is only logged.
    #[error("internal error ({public}): {cause}")]
    Internal { public: &'static str, cause: String },
}

pub type AppResult<T> = Result<T, AppError>;

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
    /// Wrap a store (or other internal) failure under the contract's public text.
    pub fn internal(public: &'static str) -> impl FnOnce(molecule_store::StoreError) -> Self {
        move |e| Self::Internal {
            public,
            cause: e.to_string(),
        }
    }
    pub fn retry_later(status: StatusCode, message: &'static str, retry_after: u64) -> Self {
        Self::RetryLater {
            status,
            message,
            retry_after,
        }
    }
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Gone(_) => StatusCode::GONE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::WithBody { status, .. } | Self::RetryLater { status, .. } => *status,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
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
            | Self::TooLarge(m) => json!({ "error": m }),
            Self::WithBody { body, .. } => body,
            Self::RetryLater {
                message,
                retry_after,
                ..
            } => json!({ "error": message, "retry_after": retry_after }),
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
