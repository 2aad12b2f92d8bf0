//! Human approvals (api-contract §5.11, data-and-lifecycle §4.2): create,
//! list, decide, pending across workspaces, and expiry by a background task
//! (the reference only expired rows when someone listed them).

use molecule_store::{ApprovalRow, NewApproval};
use molecule_types::workspace_data::{
    Approval, ApprovalStatus, CreateApproval, DecideApproval, PendingApproval,
};
use molecule_types::{ApprovalState, Event, EventType};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::App;
use crate::app::auth::{AdminAccess, ApprovalDecider, WorkspaceAccess};
use crate::error::{AppError, AppResult};

const LIST_LIMIT: i64 = 50;
pub const AUTO_EXPIRED: &str = "auto-expired";

impl App {
    pub async fn approval_create(
        &self,
        access: WorkspaceAccess,
        req: CreateApproval,
    ) -> AppResult<ApprovalStatus> {
        let ws = access.uuid();
        if req.action.trim().is_empty() {
            return Err(AppError::invalid("action is required"));
        }
        crate::app::validation::cap("action", &req.action, crate::app::validation::TEXT_MAX)?;
        if let Some(reason) = &req.reason {
            crate::app::validation::cap("reason", reason, crate::app::validation::TEXT_MAX)?;
        }
        let context = match req.context {
            None | Some(Value::Null) => json!({}),
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(AppError::invalid("context must be an object")),
        };
        let row = self.workspace_row(ws).await?;
        let a = NewApproval {
            id: Uuid::new_v4(),
            workspace_id: ws,
            task_id: req.task_id,
            action: req.action,
            reason: req.reason,
            context,
            now: self.now(),
        };
        self.store
            .approval_insert(&a)
            .await
            .map_err(AppError::internal("failed to create approval"))?;
        self.events
            .emit(Event::new(
                EventType::ApprovalRequested,
                ws,
                json!({ "approval_id": a.id, "action": a.action, "reason": a.reason, "task_id": a.task_id }),
            ))
            .await;
        if let Some(parent) = row.parent_id {
            self.events
                .emit(Event::new(
                    EventType::ApprovalEscalated,
                    parent,
                    json!({ "approval_id": a.id, "from_workspace_id": ws, "action": a.action, "reason": a.reason }),
                ))
                .await;
        }
        Ok(ApprovalStatus {
            approval_id: a.id,
            status: ApprovalState::Pending,
        })
    }

    pub async fn approval_list(&self, access: WorkspaceAccess) -> AppResult<Vec<Approval>> {
        let ws = access.uuid();
        let rows = self
            .store
            .approval_list(ws, LIST_LIMIT)
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows
            .iter()
            .map(|r| Approval {
                id: r.id,
                task_id: r.task_id.clone(),
                action: r.action.clone(),
                reason: r.reason.clone(),
                status: r.status,
                decided_by: r.decided_by.clone(),
                decided_at: r.decided_at,
                created_at: r.created_at,
            })
            .collect())
    }

    /// Decide a pending approval. In production the requesting workspace
    /// cannot approve its own request: the operator (admin token) or its
    /// parent (the workspace it was escalated to) decides.
    pub async fn approval_decide(
        &self,
        decider: ApprovalDecider,
        id: Option<Uuid>,
        req: DecideApproval,
    ) -> AppResult<ApprovalStatus> {
        let ws = decider.uuid();
        let decision = match req.decision.parse() {
            Ok(d @ (ApprovalState::Approved | ApprovalState::Denied)) => d,
            _ => return Err(AppError::invalid("decision must be approved or denied")),
        };
        let not_found = || AppError::not_found("approval not found or already decided");
        let id = id.ok_or_else(not_found)?;
        let decided_by = req
            .decided_by
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| "human".into());
        let ok = self
            .store
            .approval_decide(ws.into(), id, decision, &decided_by, self.now())
            .await
            .map_err(AppError::internal("failed to decide"))?;
        if !ok {
            return Err(not_found());
        }
        let event = if decision == ApprovalState::Approved {
            EventType::ApprovalApproved
        } else {
            EventType::ApprovalDenied
        };
        self.events
            .emit(Event::new(
                event,
                ws,
                json!({ "approval_id": id, "decision": decision, "decided_by": decided_by }),
            ))
            .await;
        Ok(ApprovalStatus {
            approval_id: id,
            status: decision,
        })
    }

    /// `GET /approvals/pending` (admin): expire first, then list.
    pub async fn approval_pending(&self, _: AdminAccess) -> AppResult<Vec<PendingApproval>> {
        self.approval_expire().await?;
        let rows = self
            .store
            .approval_list_pending(LIST_LIMIT)
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows
            .iter()
            .map(|r| PendingApproval {
                id: r.id,
                workspace_id: r.workspace_id,
                workspace_name: r.workspace_name.clone(),
                action: r.action.clone(),
                reason: r.reason.clone(),
                status: r.status,
                created_at: r.created_at,
            })
            .collect())
    }

    /// Deny pending approvals older than `approval_ttl` (decided_by
    /// `auto-expired`), announcing each with `APPROVAL_DENIED`.
    pub async fn approval_expire(&self) -> AppResult<usize> {
        let now = self.now();
        let ttl = chrono::Duration::from_std(self.config.approval_ttl)
            .unwrap_or(chrono::Duration::minutes(10));
        let expired: Vec<ApprovalRow> = self
            .store
            .approval_expire(now - ttl, now)
            .await
            .map_err(AppError::internal("query failed"))?;
        for r in &expired {
            tracing::info!(approval_id = %r.id, workspace_id = %r.workspace_id, "approval expired");
            self.events
                .emit(Event::new(
                    EventType::ApprovalDenied,
                    r.workspace_id,
                    json!({ "approval_id": r.id, "decision": "denied", "decided_by": AUTO_EXPIRED }),
                ))
                .await;
        }
        Ok(expired.len())
    }
}
