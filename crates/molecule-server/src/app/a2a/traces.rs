//! `GET /workspaces/:id/traces` (api-contract §5.7, subsystems §5.9): the
//! workspace's traces from a Langfuse-compatible API when one is configured
//! (`LANGFUSE_*`): `GET <host>/api/public/traces?limit=20&orderBy=timestamp&
//! orderDir=desc&tags=<id>` with basic auth, 10 s. Not configured, or not
//! reachable: `[]`. Otherwise its status and body pass through. The host is
//! the operator's, so it is dialled as configured (no outbound policy).

use base64::Engine;
use bytes::Bytes;
use std::time::Duration;

use super::upstream;
use super::{App, Endpoint, UrlOrigin};
use crate::app::auth::WorkspaceAccess;

const TRACES_DEADLINE: Duration = Duration::from_secs(10);

impl App {
    /// The trace API's `(status, body)`, or `None` for "answer `[]`".
    pub async fn traces(&self, access: WorkspaceAccess) -> Option<(u16, Bytes)> {
        let langfuse = self.config.langfuse.as_ref()?;
        let endpoint = Endpoint::parse(&langfuse.host, UrlOrigin::Provisioned)?;
        let path = format!(
            "{}/api/public/traces?limit=20&orderBy=timestamp&orderDir=desc&tags={}",
            endpoint.path.path().trim_end_matches('/'),
            access.uuid()
        );
        let mut req = upstream::get(&endpoint, &path)?;
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", langfuse.public_key, &*langfuse.secret_key));
        let auth = axum::http::HeaderValue::from_str(&format!("Basic {credentials}")).ok()?;
        req.headers_mut()
            .insert(axum::http::header::AUTHORIZATION, auth);
        let deadline = Some(tokio::time::Instant::now() + TRACES_DEADLINE);
        let answer = match self.a2a_http.whole(&endpoint, req, deadline).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "traces: the trace API is unreachable");
                return None;
            }
        };
        match answer.body {
            Ok(body) => Some((answer.status.as_u16(), body)),
            Err(e) => {
                tracing::warn!(error = %e.detail(), "traces: reading the trace API's answer failed");
                None
            }
        }
    }
}
