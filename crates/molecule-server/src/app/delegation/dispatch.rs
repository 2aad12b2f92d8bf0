//! The background half of a delegation: the `delegations` task reads the
//! platform's open tracking rows and runs each as one of its jobs (the
//! A2A call, one retry, the result). Because it works from the rows, a
//! platform restart loses nothing: `pending` rows are sent, and rows a
//! previous process left `dispatched` fail with [`INTERRUPTED`].

use molecule_store::DelegationUpdate;
use molecule_types::{DelegationStatus, Event, EventType};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{DELEGATION_TIMEOUT, delegation_result};
use crate::app::a2a::{A2aReply, Caller};
use crate::app::{App, activity};
use crate::error::{AppError, AppResult};

/// Name of the background task that dispatches delegations.
pub const DELEGATION_TASK: &str = "delegations";
/// At most this many delegated calls are in flight at once.
pub const PARALLEL_DELEGATIONS: usize = 32;
/// Open delegations one activation reads.
const OPEN_BATCH: i64 = 500;
/// Why a delegation that was in flight when the platform stopped failed.
pub const INTERRUPTED: &str = "interrupted: the platform restarted while the call was in flight, \
     so whether the target acted on it is unknown; delegate again if it should be done";

/// A delegated call in flight: the delegating workspace and the delegation id.
pub type DelegationKey = (Uuid, String);

/// A delegation to send: where from, where to, what.
pub(super) struct Delegation {
    pub(super) source: Uuid,
    pub(super) target: Uuid,
    pub(super) delegation_id: String,
    pub(super) task: String,
    /// Whether its tracking row exists (and must be `pending` to send it).
    pub(super) tracked: bool,
}

/// The reply text of an A2A answer: the first text part of the result (a
/// message), of its artifacts, or of its status message (a task); else the
/// raw body.
pub fn reply_text(body: &[u8]) -> String {
    let raw = || String::from_utf8_lossy(body).into_owned();
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return raw();
    };
    let result = &v["result"];
    let text_of = |parts: &Value| -> Option<String> {
        parts.as_array()?.iter().find_map(|p| {
            let is_text = p
                .get("kind")
                .or_else(|| p.get("type"))
                .and_then(Value::as_str)
                .is_none_or(|k| k == "text");
            p.get("text")
                .and_then(Value::as_str)
                .filter(|_| is_text)
                .map(str::to_string)
        })
    };
    text_of(&result["parts"])
        .or_else(|| {
            result["artifacts"]
                .as_array()
                .and_then(|a| a.iter().find_map(|art| text_of(&art["parts"])))
        })
        .or_else(|| text_of(&result["status"]["message"]["parts"]))
        .unwrap_or_else(raw)
}

/// Why an answer does not complete a delegation, if it does not.
pub(super) fn reply_failure(reply: &A2aReply) -> Option<String> {
    if !reply.is_success() {
        return Some(format!("HTTP {}", reply.status));
    }
    if let Ok(v) = serde_json::from_slice::<Value>(&reply.body)
        && let Some(err) = v.get("error").filter(|e| e.is_object())
    {
        let msg = err["message"].as_str().unwrap_or("agent returned an error");
        return Some(match err["code"].as_i64() {
            Some(code) => format!("agent error {code}: {msg}"),
            None => format!("agent error: {msg}"),
        });
    }
    if let Ok(v) = serde_json::from_slice::<Value>(&reply.body)
        && let Some(state) = v["result"]["status"]["state"].as_str()
        && matches!(
            state,
            "failed"
                | "rejected"
                | "canceled"
                | "TASK_STATE_FAILED"
                | "TASK_STATE_REJECTED"
                | "TASK_STATE_CANCELED"
        )
    {
        return Some(format!("task {state}"));
    }
    None
}

impl App {
    /// One activation of the `delegations` task: dispatch every pending
    /// delegation the platform owns, and fail, with [`INTERRUPTED`], those
    /// left `dispatched` by a previous process (their call died with it).
    /// Returns how many it launched or failed.
    pub async fn dispatch_delegations(&self) -> AppResult<usize> {
        self.delegation_jobs.reap();
        let open = self
            .store
            .activity_open_delegations(OPEN_BATCH)
            .await
            .map_err(AppError::internal("failed to list delegations"))?;
        let mut n = 0;
        for row in open {
            let Some(delegation_id) = row
                .request_body
                .as_ref()
                .and_then(|b| b["delegation_id"].as_str())
                .map(str::to_string)
            else {
                continue;
            };
            let key = (row.workspace_id, delegation_id);
            if self.delegation_jobs.is_running(&key) {
                continue;
            }
            let (source, delegation_id) = key;
            match (row.status.parse::<DelegationStatus>(), row.target_id) {
                (Ok(DelegationStatus::Pending), Some(target)) => {
                    let task = row
                        .request_body
                        .as_ref()
                        .and_then(|b| b["task"].as_str())
                        .unwrap_or_default()
                        .to_string();
                    let job = Delegation {
                        source,
                        target,
                        delegation_id,
                        task,
                        tracked: true,
                    };
                    n += usize::from(self.launch_delegation(job));
                }
                _ => {
                    n += usize::from(
                        self.fail_interrupted(source, row.target_id, &delegation_id)
                            .await,
                    );
                }
            }
        }
        Ok(n)
    }

    /// Run `job` as one of the `delegations` task's jobs; false when it is
    /// already running.
    pub(super) fn launch_delegation(&self, job: Delegation) -> bool {
        let key = (job.source, job.delegation_id.clone());
        let app = self.clone();
        self.delegation_jobs.launch(key, async move {
            app.run_delegation(job).await;
            // A full window (this job still counted) means the last read may
            // have left rows beyond it: read again now rather than at the
            // next period. Otherwise there is nothing a re-read would find.
            if app.delegation_jobs.running() >= OPEN_BATCH as usize {
                app.tasks.activate(DELEGATION_TASK);
            }
        })
    }

    /// A delegation that was `dispatched` (or could not be read back) when
    /// no job of this process runs it: failed with the reason, if it is
    /// still open (whoever finished it first wins).
    async fn fail_interrupted(
        &self,
        source: Uuid,
        target: Option<Uuid>,
        delegation_id: &str,
    ) -> bool {
        let update = DelegationUpdate {
            workspace_id: source,
            delegation_id,
            status: DelegationStatus::Failed,
            error: Some(INTERRUPTED),
            from: &[DelegationStatus::Pending, DelegationStatus::Dispatched],
        };
        let outcome = Err(INTERRUPTED.to_string());
        let (mut row, event) = delegation_result(source, target, delegation_id, &outcome);
        activity::fields::cap_row(&mut row);
        match self
            .store
            .activity_delegation_update(&update, Some(&row))
            .await
        {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, %delegation_id, "could not fail an interrupted delegation");
                return false;
            }
        }
        tracing::warn!(workspace_id = %source, %delegation_id, "delegation interrupted by a platform restart; failed");
        self.events.emit(event).await;
        true
    }

    /// The background half of a delegation.
    async fn run_delegation(&self, job: Delegation) {
        let Delegation {
            source,
            target,
            delegation_id,
            task,
            tracked,
        } = job;
        let update = DelegationUpdate {
            workspace_id: source,
            delegation_id: &delegation_id,
            status: DelegationStatus::Dispatched,
            error: None,
            from: &[DelegationStatus::Pending],
        };
        match self.store.activity_delegation_update(&update, None).await {
            // Dispatched (or finished) already: not ours to send again.
            Ok(0) if tracked => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, %delegation_id, "delegation status update failed");
                if tracked {
                    // Still pending: the next activation tries again.
                    return;
                }
            }
        }
        self.events
            .emit(Event::new(
                EventType::DelegationStatus,
                source,
                json!({ "delegation_id": delegation_id, "target_id": target, "status": DelegationStatus::Dispatched }),
            ))
            .await;
        let mut span =
            self.telemetry
                .start("delegation", molecule_telemetry::SpanKind::Internal, None);
        span.set_attribute("molecule.delegation_id", &delegation_id);
        span.set_attribute("molecule.source", source);
        span.set_attribute("molecule.target", target);
        let trace = span.context();
        let send = || {
            self.a2a_message(
                target,
                Caller::Workspace(source),
                &task,
                Uuid::new_v4().to_string(),
                DELEGATION_TIMEOUT,
                trace,
            )
        };
        let mut result = send().await;
        let transient = match &result {
            Err(e) => e.is_transient(),
            Ok(r) => matches!(r.status, 502 | 503),
        };
        if transient {
            tokio::time::sleep(self.config.delegation_retry_after).await;
            result = send().await;
        }
        let outcome = match result {
            Ok(reply) => match reply_failure(&reply) {
                None => Ok(reply_text(&reply.body)),
                Some(e) => Err(e),
            },
            Err(e) => Err(e.detail()),
        };
        if let Err(e) = &outcome {
            span.set_error(e);
        }
        span.end();
        self.finish_delegation(
            source,
            Some(target),
            &delegation_id,
            outcome,
            &[DelegationStatus::Dispatched],
        )
        .await;
    }

    /// Record the end of a delegation run in the background: the result
    /// row, the tracking row's status and the event. A failed write is
    /// logged and the rest still happens (nobody is waiting for an answer).
    async fn finish_delegation(
        &self,
        source: Uuid,
        target: Option<Uuid>,
        delegation_id: &str,
        outcome: Result<String, String>,
        from: &[DelegationStatus],
    ) {
        let (mut row, event) = delegation_result(source, target, delegation_id, &outcome);
        activity::fields::cap_row(&mut row);
        if let Err(e) = self
            .write_delegation_result(&row, delegation_id, &outcome, from)
            .await
        {
            tracing::warn!(error = %e, %delegation_id, "delegation result not fully recorded");
        }
        self.events.emit(event).await;
    }
}
