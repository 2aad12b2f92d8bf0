//! One typed method per platform route (api-contract.md §5), grouped by the
//! contract's sections. Each method only names the route and the DTOs; the
//! plumbing lives in `client.rs`. Routes without a method here are reachable
//! through [`Client::raw`].

use molecule_types::dto::{
    AccessDecision, CheckAccess, CreateWorkspace, CreatedWorkspace, Discovered, Heartbeat,
    Liveness, Peer, RegisterRequest, RegisterResponse, Removed, StatusReply, StoredEvent,
    TestToken, UpdateCard, Workspace, WorkspaceState,
};
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::client::Client;
use crate::error::ClientError;

/// Stands in for "no body" in typed calls.
const NO_BODY: Option<&()> = None;

/// §5.1 Health, metrics, admin.
impl Client {
    /// `GET /health`.
    pub async fn health(&self) -> Result<StatusReply, ClientError> {
        self.call(Method::GET, "/health", NO_BODY).await
    }

    /// `GET /metrics`: the Prometheus text exposition.
    pub async fn metrics_text(&self) -> Result<String, ClientError> {
        let response = self.send_typed(Method::GET, "/metrics", NO_BODY).await?;
        Ok(response.error_for_status()?.text())
    }

    /// `GET /admin/liveness` (admin auth).
    pub async fn liveness(&self) -> Result<Liveness, ClientError> {
        self.call(Method::GET, "/admin/liveness", NO_BODY).await
    }

    /// `GET /admin/workspaces/:id/test-token`: a fresh live token for `id`.
    pub async fn test_token(&self, id: Uuid) -> Result<TestToken, ClientError> {
        self.call(
            Method::GET,
            &format!("/admin/workspaces/{id}/test-token"),
            NO_BODY,
        )
        .await
    }
}

/// §5.2 Workspaces CRUD and §5.3 state.
impl Client {
    /// `GET /workspaces` (admin auth): every non-removed workspace.
    pub async fn list_workspaces(&self) -> Result<Vec<Workspace>, ClientError> {
        self.call(Method::GET, "/workspaces", NO_BODY).await
    }

    /// `GET /workspaces/:id` (removed workspaces included).
    pub async fn get_workspace(&self, id: Uuid) -> Result<Workspace, ClientError> {
        self.call(Method::GET, &format!("/workspaces/{id}"), NO_BODY)
            .await
    }

    /// `POST /workspaces` (admin auth).
    pub async fn create_workspace(
        &self,
        body: &CreateWorkspace,
    ) -> Result<CreatedWorkspace, ClientError> {
        self.call(Method::POST, "/workspaces", Some(body)).await
    }

    /// `PATCH /workspaces/:id`. The body is free-form because the route reads
    /// loosely typed keys; the answer is `{status}` plus optional flags.
    pub async fn patch_workspace(&self, id: Uuid, body: Value) -> Result<Value, ClientError> {
        self.call(Method::PATCH, &format!("/workspaces/{id}"), Some(&body))
            .await
    }

    /// `DELETE /workspaces/:id[?confirm=true]` (admin auth). Without `confirm`,
    /// a workspace with live children answers 409, returned as
    /// [`ClientError::Http`] whose body carries `children`.
    pub async fn delete_workspace(&self, id: Uuid, confirm: bool) -> Result<Removed, ClientError> {
        let query = if confirm { "?confirm=true" } else { "" };
        self.call(Method::DELETE, &format!("/workspaces/{id}{query}"), NO_BODY)
            .await
    }

    /// `GET /workspaces/:id/state` (workspace auth). The route answers 404 with
    /// a state body (`deleted: true`) for absent or removed workspaces; that
    /// is returned as `Ok`, since it is the answer an agent asks for.
    pub async fn workspace_state(&self, id: Uuid) -> Result<WorkspaceState, ClientError> {
        let path = format!("/workspaces/{id}/state");
        let response = self.send_typed(Method::GET, &path, NO_BODY).await?;
        if response.status == 404
            && let Ok(state) = response.decode::<WorkspaceState>(&path)
        {
            return Ok(state);
        }
        response.error_for_status()?.decode(&format!("GET {path}"))
    }
}

/// §5.4 Registry, heartbeat, discovery, access.
impl Client {
    /// `POST /registry/register`. Keep `auth_token` when present: it is shown
    /// only once.
    pub async fn register(&self, body: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
        self.call(Method::POST, "/registry/register", Some(body))
            .await
    }

    /// `POST /registry/heartbeat`.
    pub async fn heartbeat(&self, body: &Heartbeat) -> Result<StatusReply, ClientError> {
        self.call(Method::POST, "/registry/heartbeat", Some(body))
            .await
    }

    /// `POST /registry/update-card`.
    pub async fn update_card(&self, body: &UpdateCard) -> Result<StatusReply, ClientError> {
        self.call(Method::POST, "/registry/update-card", Some(body))
            .await
    }

    /// `GET /registry/discover/:target`, as the caller set with
    /// [`Client::with_workspace_id`].
    pub async fn discover(&self, target: Uuid) -> Result<Discovered, ClientError> {
        self.call(
            Method::GET,
            &format!("/registry/discover/{target}"),
            NO_BODY,
        )
        .await
    }

    /// `GET /registry/:id/peers`.
    pub async fn peers(&self, id: Uuid) -> Result<Vec<Peer>, ClientError> {
        self.call(Method::GET, &format!("/registry/{id}/peers"), NO_BODY)
            .await
    }

    /// `POST /registry/check-access`. Ids are strings on the wire, so system
    /// callers (`system:…`) can be asked about too.
    pub async fn check_access(
        &self,
        caller: impl ToString,
        target: impl ToString,
    ) -> Result<AccessDecision, ClientError> {
        let body = CheckAccess {
            caller_id: caller.to_string(),
            target_id: target.to_string(),
        };
        self.call(Method::POST, "/registry/check-access", Some(&body))
            .await
    }
}

/// §5.7 Events.
impl Client {
    /// `GET /events` or `GET /events/:workspace` (admin auth): the latest
    /// recorded events.
    pub async fn events(&self, workspace: Option<Uuid>) -> Result<Vec<StoredEvent>, ClientError> {
        let path = match workspace {
            Some(id) => format!("/events/{id}"),
            None => "/events".to_owned(),
        };
        self.call(Method::GET, &path, NO_BODY).await
    }
}
