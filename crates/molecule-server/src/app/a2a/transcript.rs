//! `GET /workspaces/:id/transcript` (api-contract §5.7, subsystems §5.10):
//! the agent's own transcript, fetched from `<agent URL>/transcript` with
//! only `since` and `limit` forwarded, 10 s, at most 1 MiB, the agent's
//! status and content type passed through.
//!
//! Fixed quirks (docs/compat.md): the URL is the one the platform reaches
//! the agent at (the proxy's target, under the proxy's outbound policy for
//! URLs someone supplied), not whatever `agent_card.url` says; and the
//! caller's bearer is never forwarded (platform tokens never reach agents).

use bytes::Bytes;
use molecule_types::WorkspaceStatus;
use std::time::Duration;

use super::upstream::{self, SendError};
use super::{A2aError, App};
use crate::app::auth::WorkspaceAccess;

/// How long the agent may take.
const TRANSCRIPT_DEADLINE: Duration = Duration::from_secs(10);
/// Largest transcript passed back.
pub const MAX_TRANSCRIPT_BYTES: usize = 1 << 20;

/// The agent's answer.
#[derive(Debug)]
pub struct Transcript {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// Why there is no transcript.
#[derive(Debug, PartialEq)]
pub enum TranscriptError {
    NotFound,
    /// The workspace has no URL yet, or is not serving (503).
    NoUrl,
    /// The URL is not `http(s)://host…` (400 `invalid workspace URL`).
    InvalidUrl,
    /// The outbound policy refuses the address (400 `workspace URL not allowed`).
    NotAllowed,
    /// Transport failure, timeout, or an answer over the cap (502).
    Unreachable(String),
}

impl App {
    /// Fetches the transcript; `since` and `limit` are forwarded as given
    /// (already checked to be plain numbers or timestamps by the caller).
    pub async fn transcript(
        &self,
        access: WorkspaceAccess,
        query: &[(&str, String)],
    ) -> Result<Transcript, TranscriptError> {
        let target = match self.resolve_target(access.uuid()).await {
            Ok(t) => t,
            Err(A2aError::NotFound) => return Err(TranscriptError::NotFound),
            Err(e) => return Err(TranscriptError::Unreachable(e.detail())),
        };
        if target.status == WorkspaceStatus::Removed {
            return Err(TranscriptError::NotFound);
        }
        if target.url.is_empty() {
            return Err(TranscriptError::NoUrl);
        }
        let endpoint = target.endpoint.clone().ok_or(TranscriptError::InvalidUrl)?;
        let mut path = format!("{}/transcript", endpoint.path.path().trim_end_matches('/'));
        let pairs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        if !pairs.is_empty() {
            path = format!("{path}?{}", pairs.join("&"));
        }
        let req = upstream::get(&endpoint, &path).ok_or(TranscriptError::InvalidUrl)?;
        let deadline = Some(tokio::time::Instant::now() + TRANSCRIPT_DEADLINE);
        let answer = match self.a2a_http.whole(&endpoint, req, deadline).await {
            Ok(a) => a,
            Err(SendError::Refused(_)) => return Err(TranscriptError::NotAllowed),
            Err(e) => return Err(TranscriptError::Unreachable(e.to_string())),
        };
        let status = answer.status.as_u16();
        let content_type = answer
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = answer
            .body
            .map_err(|e| TranscriptError::Unreachable(e.detail()))?;
        if body.len() > MAX_TRANSCRIPT_BYTES {
            return Err(TranscriptError::Unreachable(format!(
                "transcript larger than {MAX_TRANSCRIPT_BYTES} bytes"
            )));
        }
        Ok(Transcript {
            status,
            content_type,
            body,
        })
    }
}

/// Percent-encodes everything but unreserved characters.
fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            super::urlencode("2026-01-01T00:00:00+01:00"),
            "2026-01-01T00%3A00%3A00%2B01%3A00"
        );
        assert_eq!(super::urlencode("a&b=c"), "a%26b%3Dc");
        assert_eq!(super::urlencode("42"), "42");
    }
}
