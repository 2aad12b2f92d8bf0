//! The restart-context message (subsystems.md, restart context): after a
//! restart, once the agent is `online` again, the platform tells it what
//! happened — when it was restarted, why, its previous heartbeat, and the
//! names (never the values) of its environment — as an A2A `message/send`
//! from `system:restart-context`. Pending messages are kept in memory and
//! sent by the `restart-context` task; one not deliverable within 30 s of the
//! restart is dropped.

use chrono::{DateTime, Utc};
use molecule_types::WorkspaceStatus;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::app::App;
use crate::app::a2a::Caller;
use crate::error::AppResult;

/// How long after a restart the message may still be sent.
const DELIVER_WITHIN: Duration = Duration::from_secs(30);
/// The caller id the message is sent as.
pub const RESTART_CONTEXT_CALLER: &str = "system:restart-context";

#[derive(Debug, Clone)]
pub struct PendingContext {
    pub restarted_at: DateTime<Utc>,
    pub reason: String,
    pub previous_heartbeat: Option<DateTime<Utc>>,
    pub env_keys: Vec<String>,
    queued: Instant,
}

#[derive(Clone, Default)]
pub struct RestartContexts {
    pending: Arc<Mutex<HashMap<Uuid, PendingContext>>>,
}

impl RestartContexts {
    pub fn queue(
        &self,
        id: Uuid,
        reason: &str,
        previous_heartbeat: Option<DateTime<Utc>>,
        mut env_keys: Vec<String>,
    ) {
        env_keys.sort();
        env_keys.dedup();
        let ctx = PendingContext {
            restarted_at: Utc::now(),
            reason: reason.to_string(),
            previous_heartbeat,
            env_keys,
            queued: Instant::now(),
        };
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, ctx);
        }
    }

    fn snapshot(&self) -> Vec<(Uuid, PendingContext)> {
        self.pending
            .lock()
            .map(|p| p.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default()
    }

    fn done(&self, id: Uuid) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&id);
        }
    }
}

/// The JSON-RPC request the agent receives.
pub fn message(ctx: &PendingContext) -> serde_json::Value {
    let previous = ctx
        .previous_heartbeat
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| "never".into());
    let text = format!(
        "Platform notice: this workspace was restarted at {} ({}). Previous heartbeat: {}. Environment keys: {}.",
        ctx.restarted_at.to_rfc3339(),
        ctx.reason,
        previous,
        if ctx.env_keys.is_empty() {
            "none".to_string()
        } else {
            ctx.env_keys.join(", ")
        }
    );
    json!({
        "jsonrpc": "2.0",
        "id": Uuid::new_v4().to_string(),
        "method": "message/send",
        "params": {
            "message": {
                "role": "user",
                "messageId": Uuid::new_v4().to_string(),
                "parts": [{ "kind": "text", "text": text }],
                "metadata": { "source": "platform", "kind": "restart_context", "layer": 1, "restart_context": true }
            }
        }
    })
}

impl App {
    /// One activation of the `restart-context` task.
    pub async fn send_restart_contexts(&self) -> AppResult<usize> {
        let mut sent = 0;
        for (id, ctx) in self.restart_contexts.snapshot() {
            if ctx.queued.elapsed() > DELIVER_WITHIN {
                tracing::info!(workspace_id = %id, "restart context dropped: the workspace was not online within 30 s");
                self.restart_contexts.done(id);
                continue;
            }
            let Ok(Some(row)) = self.store.workspace_get(id).await else {
                continue;
            };
            if row.status == WorkspaceStatus::Removed {
                self.restart_contexts.done(id);
                continue;
            }
            let url = row.url.clone().unwrap_or_default();
            if !row.status.is_live() || url.is_empty() {
                continue;
            }
            let result = self
                .a2a_call(
                    id,
                    Caller::System(RESTART_CONTEXT_CALLER.to_string()),
                    message(&ctx),
                    Duration::from_secs(10),
                    None,
                )
                .await;
            match result {
                Ok(resp) if resp.is_success() => {
                    self.restart_contexts.done(id);
                    self.metrics.inc("molecule_restart_context_sent_total", &[]);
                    sent += 1;
                }
                Ok(resp) => {
                    tracing::warn!(workspace_id = %id, status = resp.status, "restart context refused; will retry")
                }
                Err(e) => {
                    tracing::warn!(workspace_id = %id, error = %e.detail(), "restart context not delivered yet; will retry")
                }
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_carries_sorted_env_keys_and_the_metadata() {
        let c = RestartContexts::default();
        let id = Uuid::new_v4();
        c.queue(
            id,
            "health sweep: container exited",
            None,
            vec!["B".into(), "A".into(), "B".into()],
        );
        let (_, ctx) = c.snapshot().pop().unwrap();
        let m = message(&ctx);
        let text = m["params"]["message"]["parts"][0]["text"].as_str().unwrap();
        assert!(text.contains("Environment keys: A, B."), "{text}");
        assert!(text.contains("Previous heartbeat: never"));
        assert_eq!(m["method"], "message/send");
        assert_eq!(
            m["params"]["message"]["metadata"]["kind"],
            "restart_context"
        );
        assert_eq!(m["params"]["message"]["metadata"]["restart_context"], true);
    }
}
