//! The A2A conformance probe (issue 19, item 8; no reference platform has
//! it). When an agent registers, the platform checks, off the request path,
//! three harmless things any A2A 0.3 agent must get right — its card is
//! served and names a URL, an unknown method is `-32601` with the request's
//! id, malformed JSON is `-32700` — and records the result on the workspace
//! (`a2a_conformance`, also in a `WORKSPACE_A2A_CONFORMANCE` event), so an
//! operator sees at once that an agent will misbehave. It never blocks or
//! fails a registration. `MOLECULE_A2A_PROBE=off` turns it off.
//!
//! A provisioned agent may register before the provisioner has written the
//! address the platform reaches it at; then the probe waits for that write
//! ([`App::conformance_url_known`]). The pending mark is set before the
//! address is read and taken atomically, so exactly one of the two sides
//! runs the probe.

use bytes::Bytes;
use molecule_types::{Event, EventType, WorkspaceStatus};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::upstream;
use super::{App, Endpoint, UrlOrigin};

/// How long each probe request may take.
const PROBE_DEADLINE: Duration = Duration::from_secs(10);
/// Probes running at once (a platform restart re-registers the fleet).
const MAX_CONCURRENT_PROBES: usize = 8;
/// The caller the agent sees in `X-Workspace-ID`.
const PROBE_CALLER: &str = "system:a2a-conformance";

/// Registrations waiting for a probe, and the limit on probes in flight.
#[derive(Clone)]
pub struct Probes {
    pending: Arc<Mutex<HashSet<Uuid>>>,
    running: Arc<Semaphore>,
}

impl Default for Probes {
    fn default() -> Probes {
        Probes {
            pending: Arc::default(),
            running: Arc::new(Semaphore::new(MAX_CONCURRENT_PROBES)),
        }
    }
}

impl Probes {
    fn mark(&self, id: Uuid) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id);
        }
    }

    fn take(&self, id: Uuid) -> bool {
        self.pending.lock().is_ok_and(|mut p| p.remove(&id))
    }
}

/// One failed check: its name and what was wrong.
fn failure(check: &str, detail: impl Into<String>) -> Value {
    json!({ "check": check, "detail": detail.into() })
}

impl App {
    /// After a registration: probe the agent once its address is known.
    pub(in crate::app) fn conformance_after_register(&self, id: Uuid) {
        if !self.config.a2a_probe {
            return;
        }
        self.probes.mark(id);
        let app = self.clone();
        tokio::spawn(async move {
            let known = matches!(
                app.store.workspace_get(id).await,
                Ok(Some(row)) if row.url.as_deref().is_some_and(|u| !u.is_empty())
            );
            if known && app.probes.take(id) {
                app.check_conformance(id).await;
            }
        });
    }

    /// After the provisioner wrote a workspace's address: probe it if its
    /// agent registered before.
    pub(in crate::app) fn conformance_url_known(&self, id: Uuid) {
        if self.probes.take(id) {
            let app = self.clone();
            tokio::spawn(async move { app.check_conformance(id).await });
        }
    }

    /// Runs the checks and records the result.
    async fn check_conformance(&self, id: Uuid) {
        let Ok(_permit) = self.probes.running.clone().acquire_owned().await else {
            return;
        };
        let Ok(Some(row)) = self.store.workspace_get(id).await else {
            return;
        };
        if row.status == WorkspaceStatus::Removed {
            return;
        }
        let url = row.url.unwrap_or_default();
        let mut failed = Vec::new();
        match self.fetch_card(id, &row.runtime, Some(&url)).await {
            Ok(card) if card["url"].as_str().is_some_and(|u| !u.is_empty()) => {}
            Ok(_) => failed.push(failure("agent_card", "the card names no url")),
            Err(e) => failed.push(failure("agent_card", e.detail())),
        }
        let origin = UrlOrigin::of(&row.runtime, &url, self.provisioner.is_some());
        match Endpoint::parse(&url, origin) {
            None => failed.push(failure("endpoint", format!("invalid URL {url:?}"))),
            Some(endpoint) => {
                let unknown = br#"{"jsonrpc":"2.0","id":"molecule-probe-1","method":"molecule/no-such-method","params":{}}"#;
                if let Err(detail) = self
                    .probe_rpc(&endpoint, unknown, -32601, &json!("molecule-probe-1"))
                    .await
                {
                    failed.push(failure("unknown_method", detail));
                }
                let malformed = br#"{"jsonrpc":"2.0","id":"molecule-probe-2","#;
                if let Err(detail) = self
                    .probe_rpc(&endpoint, malformed, -32700, &Value::Null)
                    .await
                {
                    failed.push(failure("malformed_request", detail));
                }
            }
        }
        let result = json!({
            "checked_at": self.now(),
            "passed": failed.is_empty(),
            "checks": ["agent_card", "unknown_method", "malformed_request"],
            "failed": failed,
        });
        if !failed.is_empty() {
            tracing::warn!(workspace_id = %id, failed = %result["failed"], "agent fails A2A conformance checks");
        }
        match self.store.workspace_set_conformance(id, &result).await {
            Ok(true) => {
                self.events
                    .emit(Event::new(EventType::WorkspaceA2aConformance, id, result))
                    .await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(workspace_id = %id, error = %e, "recording the A2A conformance result failed");
            }
        }
    }

    /// POSTs `body` and expects a JSON-RPC error `code` answering `id`.
    async fn probe_rpc(
        &self,
        endpoint: &Endpoint,
        body: &'static [u8],
        code: i64,
        id: &Value,
    ) -> Result<(), String> {
        let req = upstream::post(
            endpoint,
            Bytes::from_static(body),
            Some(PROBE_CALLER.to_string()),
            &[],
        );
        let deadline = Some(tokio::time::Instant::now() + PROBE_DEADLINE);
        let whole = self
            .a2a_http
            .whole(endpoint, req, deadline)
            .await
            .map_err(|e| format!("unreachable: {e}"))?;
        let status = whole.status.as_u16();
        let answer = whole.body.map_err(|e| e.detail())?;
        let answer: Value = serde_json::from_slice(&answer)
            .map_err(|_| format!("HTTP {status}, not a JSON-RPC answer"))?;
        if answer["jsonrpc"] != "2.0" || answer.get("error").is_none() {
            return Err(format!("expected a JSON-RPC error {code}, got {answer}"));
        }
        if answer["error"]["code"] != code {
            return Err(format!(
                "expected error code {code}, got {}",
                answer["error"]["code"]
            ));
        }
        if &answer["id"] != id {
            return Err(format!("expected id {id}, got {}", answer["id"]));
        }
        Ok(())
    }
}
