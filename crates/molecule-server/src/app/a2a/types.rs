//! The proxy's vocabulary: who calls, what a call carries, what comes
//! back, and why a call produced no agent answer.

use axum::http::{HeaderName, HeaderValue};
use bytes::Bytes;
use molecule_types::is_system_caller;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{MAX_REQUEST_BODY, MAX_RESPONSE_BODY};

/// Who is calling the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No `X-Workspace-ID`: the canvas (an operator).
    Canvas,
    /// Another workspace; hierarchy rules apply.
    Workspace(Uuid),
    /// `system:…`, `webhook:…`, `channel:…`, `test:…`: platform components.
    System(String),
}

impl Caller {
    /// From the `X-Workspace-ID` header.
    pub fn from_header(value: Option<&str>) -> Result<Caller, A2aError> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(Caller::Canvas),
            Some(v) if is_system_caller(v) => Ok(Caller::System(v.to_string())),
            Some(v) => v.parse().map(Caller::Workspace).map_err(|_| {
                A2aError::BadRequest(
                    "X-Workspace-ID must be a workspace UUID or a system caller".into(),
                )
            }),
        }
    }

    pub(super) fn header_value(&self) -> Option<String> {
        match self {
            Caller::Canvas => None,
            Caller::Workspace(id) => Some(id.to_string()),
            Caller::System(s) => Some(s.clone()),
        }
    }
}

/// One call through the proxy.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    /// Who calls whom, authorised ([`App::auth_a2a`] for a request,
    /// [`App::a2a_internal`] for the platform's own calls).
    ///
    /// [`App::auth_a2a`]: crate::app::App::auth_a2a
    /// [`App::a2a_internal`]: crate::app::App::a2a_internal
    pub route: A2aRoute,
    pub body: Bytes,
    /// `A2A-Version` / `A2A-Extensions` of the request.
    pub a2a_headers: Vec<(HeaderName, HeaderValue)>,
    /// `X-Timeout` or an internal caller's deadline.
    pub timeout: Option<Duration>,
    /// The proxy URL as the client sees it, written into the card an
    /// `agent/getAuthenticatedExtendedCard` answer carries; `None` for the
    /// platform's own calls (nothing to rewrite).
    pub proxy_url: Option<String>,
    /// The trace the call belongs to: the request's `traceparent`, or the
    /// span of the platform component making the call.
    pub trace_parent: Option<molecule_telemetry::SpanContext>,
}

/// Proof that `caller` may call `target` through the proxy: its
/// credential checked and the hierarchy consulted. Only `app::a2a` makes
/// one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct A2aRoute {
    caller: Caller,
    target: Uuid,
}

impl A2aRoute {
    pub(in crate::app) fn granted(caller: Caller, target: Uuid) -> Self {
        Self { caller, target }
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn target(&self) -> Uuid {
        self.target
    }
}

/// The agent's answer, passed through.
pub struct ProxyResponse {
    pub status: u16,
    pub content_type: Option<HeaderValue>,
    pub a2a_headers: Vec<(HeaderName, HeaderValue)>,
    pub body: ProxyBody,
}

pub enum ProxyBody {
    Full(Bytes),
    /// Server-sent events, chunk by chunk as the agent flushes them.
    Stream(mpsc::Receiver<Bytes>),
}

/// An agent's unary answer.
#[derive(Debug, Clone)]
pub struct A2aReply {
    pub status: u16,
    pub body: Bytes,
    pub duration: Duration,
}

impl A2aReply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a call did not produce an agent answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum A2aError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("access denied: workspaces cannot communicate per hierarchy rules")]
    AccessDenied,
    #[error("workspace not found")]
    NotFound,
    #[error("workspace has no URL")]
    NoUrl { status: String },
    #[error("workspace is {status}")]
    NotServing { status: String },
    #[error("request body too large (limit {MAX_REQUEST_BODY} bytes)")]
    TooLarge,
    #[error("workspace agent busy — retry after a short backoff")]
    Busy,
    #[error("workspace agent unreachable — container restart triggered")]
    Restarting,
    #[error("failed to reach workspace agent")]
    Unreachable(String),
    /// Every address of a supplied URL is closed by the outbound policy;
    /// the cause (which address, why) is logged, not sent.
    #[error("workspace URL refused by the outbound policy")]
    Refused(String),
    #[error("agent response larger than {MAX_RESPONSE_BODY} bytes")]
    ResponseTooLarge,
    #[error("failed to read agent response")]
    ReadFailed(String),
    /// The body is not a JSON-RPC 2.0 request. Answered as the JSON-RPC
    /// error a conforming server gives (HTTP 200, the request's id when it
    /// could be read); nothing is forwarded.
    #[error("{message}")]
    Rpc {
        id: serde_json::Value,
        code: i64,
        message: String,
    },
    #[error("{0}")]
    Internal(String),
}

impl A2aError {
    /// A short text for logs, activity rows and delegation errors.
    pub fn detail(&self) -> String {
        match self {
            A2aError::Unreachable(cause)
            | A2aError::ReadFailed(cause)
            | A2aError::Refused(cause) => {
                format!("{self}: {cause}")
            }
            _ => self.to_string(),
        }
    }

    /// Worth one retry (delegation): the agent may answer a moment later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            A2aError::Busy | A2aError::Restarting | A2aError::Unreachable(_)
        )
    }
}
