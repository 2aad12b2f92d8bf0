//! The rules whose outcome depends on more than the route's workspace id:
//! the fields of a patch, the approval's requester, the caller a header
//! names. Each answers a proof (see `proofs`), like the simple rules in
//! the parent module.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    AccessQuery, ApprovalDecider, Audience, Credentials, PatchAccess, PeerAccess, Principal,
};
use crate::app::App;
use crate::error::{AppError, AppResult};

/// Fields of `PATCH /workspaces/:id` only an operator may change.
const SENSITIVE_FIELDS: [&str; 4] = ["tier", "parent_id", "runtime", "workspace_dir"];

impl App {
    /// `PATCH /workspaces/:id`: the admin token changes anything; the
    /// workspace's own token changes the non-sensitive fields.
    pub async fn auth_patch(
        &self,
        id: Uuid,
        body: Map<String, Value>,
        creds: Credentials<'_>,
    ) -> AppResult<PatchAccess> {
        if !self.dev_open(creds) {
            let bearer = creds.bearer;
            let sensitive = SENSITIVE_FIELDS.iter().find(|f| body.contains_key(**f));
            match (self.principal(bearer).await?, sensitive) {
                (Principal::Admin, _) => {}
                (Principal::Workspace(ws), None) if ws == id => {}
                (_, Some(field)) if bearer.is_none() => {
                    return Err(AppError::unauthenticated(format!(
                        "admin auth required for field: {field}"
                    )));
                }
                (Principal::Anonymous, None) if bearer.is_none() => {
                    return Err(AppError::unauthenticated("admin auth required"));
                }
                _ => return Err(AppError::unauthenticated("invalid admin auth token")),
            }
        }
        Ok(PatchAccess::granted(id, body))
    }

    /// Deciding an approval of `ws`. Production: an operator or the
    /// workspace's parent (the one it was escalated to), never the requester.
    /// Development keeps the reference's rule (the requester's own token)
    /// and also accepts the parent's.
    pub async fn auth_approval_decider(
        &self,
        ws: Uuid,
        creds: Credentials<'_>,
    ) -> AppResult<ApprovalDecider> {
        if self.dev_open(creds) {
            if self.auth_workspace(ws, creds).await.is_ok() {
                return Ok(ApprovalDecider::granted(ws));
            }
            let parent = self.workspace_row(ws).await?.parent_id;
            return match (parent, self.principal(creds.bearer).await?) {
                (Some(p), Principal::Workspace(w)) if w == p => Ok(ApprovalDecider::granted(ws)),
                _ => self
                    .auth_workspace(ws, creds)
                    .await
                    .map(|_| ApprovalDecider::granted(ws)),
            };
        }
        let parent = self.workspace_row(ws).await?.parent_id;
        match self.principal(creds.bearer).await? {
            Principal::Admin => Ok(ApprovalDecider::granted(ws)),
            Principal::Workspace(w) if Some(w) == parent => Ok(ApprovalDecider::granted(ws)),
            _ => Err(AppError::forbidden(
                "an approval is decided by an operator or the parent workspace, not by its requester",
            )),
        }
    }

    /// A caller named in `X-Workspace-ID` reading `ws`: it proves who it is
    /// and may talk to `ws`; a self-declared system identity is only
    /// trusted from an operator.
    pub async fn auth_peer(
        &self,
        ws: Uuid,
        caller: Option<&str>,
        creds: Credentials<'_>,
    ) -> AppResult<PeerAccess> {
        let caller =
            caller.ok_or_else(|| AppError::unauthenticated("X-Workspace-ID header required"))?;
        if molecule_types::is_system_caller(caller) {
            self.auth_admin(creds)?;
        } else {
            let caller: Uuid = caller
                .parse()
                .map_err(|_| AppError::invalid("X-Workspace-ID must be a workspace UUID"))?;
            self.auth_agent(caller, creds, "caller").await?;
            if caller != ws && !self.hierarchy.can_communicate(caller, ws).await {
                return Err(AppError::forbidden("access denied"));
            }
        }
        Ok(PeerAccess::granted(ws))
    }

    /// `POST /registry/check-access`: open in development from loopback;
    /// otherwise the admin token or the caller's own (the hierarchy is not
    /// disclosed to strangers).
    pub async fn auth_check_access(
        &self,
        caller: &str,
        creds: Credentials<'_>,
    ) -> AppResult<AccessQuery> {
        if !self.dev_open(creds) {
            match caller.trim().parse::<Uuid>() {
                Ok(c) => {
                    self.auth_workspace(c, creds).await?;
                }
                Err(_) => {
                    self.auth_admin(creds)?;
                }
            }
        }
        Ok(AccessQuery::granted())
    }

    /// A `/ws` subscriber: a workspace named in `X-Workspace-ID` proves
    /// itself by the agent rule; otherwise the bearer decides (the admin
    /// token sees everything, a workspace token its own view).
    pub async fn auth_events(
        &self,
        caller: Option<&str>,
        creds: Credentials<'_>,
    ) -> AppResult<Audience> {
        if let Some(c) = caller {
            let id = c
                .parse::<Uuid>()
                .map_err(|_| AppError::invalid("X-Workspace-ID must be a workspace UUID"))?;
            self.auth_agent(id, creds, "workspace").await?;
            return Ok(Audience::Workspace(id));
        }
        match self.principal(creds.bearer).await? {
            Principal::Admin => Ok(Audience::Everything),
            Principal::Workspace(id) => Ok(Audience::Workspace(id)),
            Principal::Anonymous if self.dev_open(creds) => Ok(Audience::Everything),
            Principal::Anonymous if creds.bearer.is_some() => {
                Err(AppError::unauthenticated("invalid admin auth token"))
            }
            Principal::Anonymous => Err(AppError::unauthenticated("admin auth required")),
        }
    }
}
