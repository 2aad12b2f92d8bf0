//! Async delegation (api-contract §5.6, data-and-lifecycle §4.1): a
//! workspace hands a task to another one; the platform sends it through the
//! A2A proxy in the background and tracks it in `activity_logs`
//! (`activity_type = 'delegation'`, a `delegate` tracking row and
//! `delegate_result` rows).
//!
//! Status lifecycle of the tracking row: `pending` → `dispatched` →
//! `completed` | `failed`. Only a 2xx answer without a JSON-RPC error
//! completes a delegation; an agent error or non-2xx status fails it.

use molecule_store::{ActivityQuery, ActivityRow, DelegationUpdate, NewActivity};
use molecule_types::workspace_data::{
    Delegation as DelegationView, DelegationAccepted, DelegationAck,
};
use molecule_types::{ActivityType, DelegationStatus, Event, EventType};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

use super::validation::uuid_field;
use super::{App, activity};
use crate::app::auth::WorkspaceAccess;
use crate::error::{AppError, AppResult};
use dispatch::Delegation;
#[cfg(test)]
use dispatch::reply_failure;
pub use dispatch::{DELEGATION_TASK, DelegationKey, INTERRUPTED, PARALLEL_DELEGATIONS, reply_text};

mod dispatch;

/// Deadline of one delegated call.
pub const DELEGATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const LIST_LIMIT: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct DelegateRequest {
    #[serde(default)]
    pub target_id: String,
    #[serde(default)]
    pub task: String,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RecordRequest {
    #[serde(default)]
    pub target_id: String,
    #[serde(default)]
    pub task: String,
    #[serde(default)]
    pub delegation_id: String,
}

#[derive(Debug, Deserialize)]
pub struct UpdateRequest {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub response_preview: Option<String>,
}

/// At most `n` characters (never splits a UTF-8 sequence).
pub fn preview(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn parse_target(raw: &str) -> AppResult<Uuid> {
    uuid_field(raw, "target_id")
}

/// The tracking row's body. The task is cut so that the body stays under
/// the body cap and keeps the `delegation_id` every later update finds the
/// row by (a task within `LONG_TEXT_MAX` is never cut). `platform` marks a
/// delegation the platform itself dispatches (`POST /delegate`), which the
/// `delegations` task re-reads from here, after a restart too.
fn tracking_body(task: &str, delegation_id: &str, platform: bool) -> Value {
    let mut stored = task.to_string();
    activity::fields::cap_text_to(&mut stored, activity::fields::MAX_BODY_BYTES / 2);
    let mut body = json!({ "task": stored, "delegation_id": delegation_id });
    if platform {
        body["dispatched_by"] = json!("platform");
    }
    body
}

/// The `delegate_result` row and the event of a finished delegation.
fn delegation_result(
    source: Uuid,
    target: Option<Uuid>,
    delegation_id: &str,
    outcome: &Result<String, String>,
) -> (NewActivity, Event) {
    let mut row = NewActivity::new(source, ActivityType::Delegation);
    row.source_id = Some(source);
    row.target_id = target;
    row.method = Some("delegate_result".into());
    let event = match outcome {
        Ok(text) => {
            row.status = DelegationStatus::Completed.as_str().into();
            row.summary = Some(format!("Delegation completed: {}", preview(text, 80)));
            // A reply can be megabytes: the text is cut so that the body
            // stays under the body cap and keeps its `delegation_id` (half
            // the cap leaves room for JSON escapes of ordinary text).
            let mut stored = text.clone();
            activity::fields::cap_text_to(&mut stored, activity::fields::MAX_BODY_BYTES / 2);
            row.response_body = Some(json!({ "text": stored, "delegation_id": delegation_id }));
            Event::new(
                EventType::DelegationComplete,
                source,
                json!({
                    "delegation_id": delegation_id,
                    "target_id": target,
                    "response_preview": preview(text, 200),
                }),
            )
        }
        Err(e) => {
            row.status = DelegationStatus::Failed.as_str().into();
            row.summary = Some("Delegation failed".into());
            row.error_detail = Some(e.clone());
            row.response_body = Some(json!({ "delegation_id": delegation_id }));
            Event::new(
                EventType::DelegationFailed,
                source,
                json!({ "delegation_id": delegation_id, "target_id": target, "error": e }),
            )
        }
    };
    (row, event)
}

/// The wire view of a delegation row.
fn view(r: &ActivityRow) -> DelegationView {
    let delegation_id = r
        .request_body
        .as_ref()
        .and_then(|b| b["delegation_id"].as_str())
        .or_else(|| {
            r.response_body
                .as_ref()
                .and_then(|b| b["delegation_id"].as_str())
        })
        .map(str::to_string);
    DelegationView {
        id: r.id,
        kind: r.method.clone(),
        source_id: r.source_id,
        target_id: r.target_id,
        summary: r.summary.clone(),
        status: r.status.clone(),
        created_at: r.created_at,
        delegation_id,
        error: r.error_detail.clone().filter(|e| !e.is_empty()),
        response_preview: r
            .response_body
            .as_ref()
            .and_then(|b| b["text"].as_str())
            .map(|t| preview(t, 300)),
    }
}

impl App {
    /// POST /workspaces/:id/delegate.
    /// A new delegation, or (with `idempotent_hit`) the live one holding the
    /// same idempotency key.
    pub async fn delegate(
        &self,
        access: WorkspaceAccess,
        req: DelegateRequest,
    ) -> AppResult<DelegationAccepted> {
        let source = access.uuid();
        let target = parse_target(&req.target_id)?;
        if req.task.trim().is_empty() {
            return Err(AppError::invalid("task is required"));
        }
        super::validation::cap("task", &req.task, super::validation::LONG_TEXT_MAX)?;
        self.live_workspace_row(source).await?;
        let target_name = self
            .live_workspace_row(target)
            .await
            .map_err(|_| AppError::not_found("target workspace not found"))?
            .name;
        if !self.hierarchy.can_communicate(source, target).await {
            return Err(AppError::forbidden(
                "access denied: workspaces cannot communicate per hierarchy rules",
            ));
        }
        let key = req.idempotency_key.filter(|k| !k.trim().is_empty());
        if let Some(key) = key.as_deref()
            && let Some(hit) = self.idempotent_hit(source, key).await?
        {
            return Ok(hit);
        }
        let delegation_id = Uuid::new_v4().to_string();
        let mut row = NewActivity::new(source, ActivityType::Delegation);
        row.source_id = Some(source);
        row.target_id = Some(target);
        row.method = Some("delegate".into());
        row.summary = Some(format!("Delegating to {target_name}"));
        row.request_body = Some(tracking_body(&req.task, &delegation_id, true));
        row.status = DelegationStatus::Pending.as_str().into();
        row.idempotency_key = key.clone();
        self.charge_activity(&mut row)?;
        let mut body = DelegationAccepted {
            delegation_id: Some(delegation_id.clone()),
            status: "delegated".into(),
            target_id: Some(target),
            warning: None,
            idempotent_hit: None,
        };
        let mut tracked = true;
        match self.store.activity_insert(&row).await {
            Ok(true) => {}
            Ok(false) => {
                // A concurrent call with the same key won: answer with it.
                if let Some(key) = key.as_deref()
                    && let Some(hit) = self.idempotent_hit(source, key).await?
                {
                    return Ok(hit);
                }
                return Err(AppError::not_found("workspace not found"));
            }
            Err(e) => {
                tracing::error!(error = %e, "delegation tracking insert failed");
                body.warning = Some("delegation dispatched but status tracking unavailable".into());
                tracked = false;
            }
        }
        self.events
            .emit(Event::new(
                EventType::DelegationSent,
                source,
                json!({
                    "delegation_id": delegation_id,
                    "target_id": target,
                    "task_preview": preview(&req.task, 100),
                }),
            ))
            .await;
        if tracked {
            // The `delegations` task reads the row and dispatches it.
            self.tasks.activate(DELEGATION_TASK);
        } else {
            // No row to re-read: dispatched now, not tracked.
            let job = Delegation {
                source,
                target,
                delegation_id,
                task: req.task,
                tracked: false,
            };
            self.launch_delegation(job);
        }
        Ok(body)
    }

    /// A live (not failed) delegation holding `key`; a failed one is
    /// deleted so the call proceeds as new.
    async fn idempotent_hit(
        &self,
        source: Uuid,
        key: &str,
    ) -> AppResult<Option<DelegationAccepted>> {
        let q = AppError::internal("delegation lookup failed");
        let Some(existing) = self
            .store
            .activity_by_idempotency_key(source, key)
            .await
            .map_err(q)?
        else {
            return Ok(None);
        };
        if existing.status == DelegationStatus::Failed.as_str() {
            self.store
                .activity_delete(existing.id)
                .await
                .map_err(AppError::internal("delegation lookup failed"))?;
            return Ok(None);
        }
        Ok(Some(DelegationAccepted {
            delegation_id: existing
                .request_body
                .as_ref()
                .and_then(|b| b["delegation_id"].as_str())
                .map(str::to_string),
            status: existing.status,
            target_id: existing.target_id,
            warning: None,
            idempotent_hit: Some(true),
        }))
    }

    /// The tracking row's final status and the result row, in one
    /// transaction (whoever sees the final status also finds the result
    /// row; nothing is written when the tracking row is not in `from`).
    async fn write_delegation_result(
        &self,
        row: &NewActivity,
        delegation_id: &str,
        outcome: &Result<String, String>,
        from: &[DelegationStatus],
    ) -> Result<(), molecule_store::StoreError> {
        let (status, error) = match outcome {
            Ok(_) => (DelegationStatus::Completed, None),
            Err(e) => (DelegationStatus::Failed, Some(e.as_str())),
        };
        let update = DelegationUpdate {
            workspace_id: row.workspace_id,
            delegation_id,
            status,
            error,
            from,
        };
        self.store
            .activity_delegation_update(&update, Some(row))
            .await
            .map(drop)
    }

    /// GET /workspaces/:id/delegations: the newest 50 tracking and result rows.
    pub async fn delegations(&self, access: WorkspaceAccess) -> AppResult<Vec<DelegationView>> {
        let source = access.uuid();
        let rows = self
            .store
            .activity_list(&ActivityQuery {
                workspace_id: source,
                activity_type: Some(ActivityType::Delegation),
                source: None,
                methods: vec!["delegate".into(), "delegate_result".into()],
                limit: LIST_LIMIT,
            })
            .await
            .map_err(AppError::internal("failed to list delegations"))?;
        Ok(rows.iter().map(view).collect())
    }

    /// POST /workspaces/:id/delegations/record: an agent delegated by
    /// itself and tells the platform. Recording the same id twice keeps
    /// one row.
    pub async fn record_delegation(
        &self,
        access: WorkspaceAccess,
        req: RecordRequest,
    ) -> AppResult<DelegationAck> {
        let source = access.uuid();
        let target = parse_target(&req.target_id)?;
        let delegation_id = req.delegation_id.trim().to_string();
        if req.task.trim().is_empty() || delegation_id.is_empty() {
            return Err(AppError::invalid(
                "target_id, task and delegation_id are required",
            ));
        }
        self.live_workspace_row(source).await?;
        let existing = self
            .store
            .activity_delegation(source, &delegation_id)
            .await
            .map_err(AppError::internal("failed to record delegation"))?;
        if existing.is_none() {
            let mut row = NewActivity::new(source, ActivityType::Delegation);
            row.source_id = Some(source);
            row.target_id = Some(target);
            row.method = Some("delegate".into());
            row.summary = Some(format!("Delegating to {target}"));
            row.request_body = Some(tracking_body(&req.task, &delegation_id, false));
            row.status = DelegationStatus::Dispatched.as_str().into();
            row.created_at = self.now();
            self.charge_activity(&mut row)?;
            self.store
                .activity_insert(&row)
                .await
                .map_err(AppError::internal("failed to record delegation"))?;
            self.events
                .emit(Event::new(
                    EventType::DelegationSent,
                    source,
                    json!({
                        "delegation_id": delegation_id,
                        "target_id": target,
                        "task_preview": preview(&req.task, 100),
                    }),
                ))
                .await;
        }
        Ok(DelegationAck {
            delegation_id,
            status: "recorded".into(),
        })
    }

    /// POST /workspaces/:id/delegations/:delegation_id/update.
    pub async fn update_delegation(
        &self,
        access: WorkspaceAccess,
        delegation_id: &str,
        req: UpdateRequest,
    ) -> AppResult<DelegationAck> {
        let source = access.uuid();
        let outcome = match req.status.parse::<DelegationStatus>() {
            Ok(DelegationStatus::Completed) => Ok(req.response_preview.clone().unwrap_or_default()),
            Ok(DelegationStatus::Failed) => Err(req.error.clone().unwrap_or_default()),
            _ => return Err(AppError::invalid("status must be 'completed' or 'failed'")),
        };
        let existing = self
            .store
            .activity_delegation(source, delegation_id)
            .await
            .map_err(AppError::internal("failed to update delegation"))?
            .ok_or_else(|| AppError::not_found("delegation not found"))?;
        let (mut row, event) =
            delegation_result(source, existing.target_id, delegation_id, &outcome);
        self.charge_activity(&mut row)?;
        // The answer says the update is recorded: a failed write is a 500,
        // not a 200 over nothing.
        self.write_delegation_result(&row, delegation_id, &outcome, &[])
            .await
            .map_err(AppError::internal("failed to update delegation"))?;
        self.events.emit(event).await;
        Ok(DelegationAck {
            delegation_id: delegation_id.to_string(),
            status: req.status,
        })
    }
}

#[cfg(test)]
mod tests;
