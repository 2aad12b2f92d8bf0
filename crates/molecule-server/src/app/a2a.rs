//! The A2A proxy core: who may call whom, where the agent is, forwarding
//! with deadlines, error mapping and the activity it leaves behind. The
//! HTTP handler (`POST /workspaces/:id/a2a`) and internal callers (the
//! scheduler, delegation, the restart-context message) all go through
//! [`App::a2a_message`] / the proxy, so they share one behaviour.

use bytes::Bytes;
use std::time::Duration;
use uuid::Uuid;

use super::App;

/// Who is calling the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No `X-Workspace-ID`: the canvas (an operator), fully trusted.
    Canvas,
    /// Another workspace; hierarchy rules apply.
    Workspace(Uuid),
    /// `system:…`, `webhook:…`, `channel:…`, `test:…`: platform components.
    System(String),
}

/// An agent's answer, passed through verbatim.
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
    #[error("access denied: workspaces cannot communicate per hierarchy rules")]
    AccessDenied,
    #[error("workspace not found")]
    NotFound,
    #[error("workspace has no URL")]
    NoUrl { status: String },
    #[error("workspace agent busy — retry after a short backoff")]
    Busy,
    #[error("workspace agent unreachable — container restart triggered")]
    Restarting,
    #[error("deadline exceeded after {0:?}")]
    Timeout(Duration),
    #[error("failed to reach workspace agent: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Internal(String),
}

impl App {
    /// Send a `message/send` with one text part to `target` as `caller`,
    /// through the proxy, waiting at most `timeout`. `message_id` becomes
    /// the message's `messageId`.
    pub async fn a2a_message(
        &self,
        target: Uuid,
        caller: Caller,
        text: &str,
        message_id: String,
        timeout: Duration,
    ) -> Result<A2aReply, A2aError> {
        let _ = (target, caller, text, message_id, timeout);
        Err(A2aError::Internal(
            "the A2A proxy is being built (issue 4)".into(),
        ))
    }
}
