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

use crate::client::{Client, NO_BODY};
use crate::error::ClientError;

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

    /// `POST /admin/workspaces/:id/token` (admin auth): rotate `id`'s
    /// credential; every older token of it stops working.
    pub async fn rotate_token(&self, id: Uuid) -> Result<TestToken, ClientError> {
        self.call(
            Method::POST,
            &format!("/admin/workspaces/{id}/token"),
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

/// §5.5 A2A proxy.
impl Client {
    /// `POST /workspaces/:target/a2a` with a JSON-RPC body. The agent's
    /// answer (or the proxy's error) comes back whatever its status; this
    /// client's workspace id and token identify the caller.
    pub async fn a2a(
        &self,
        target: Uuid,
        body: &Value,
    ) -> Result<crate::client::RawResponse, ClientError> {
        self.request(
            Method::POST,
            &format!("/workspaces/{target}/a2a"),
            Some(body),
        )
        .await
    }

    /// `message/send` with one text part to `target`.
    pub async fn a2a_send_text(
        &self,
        target: Uuid,
        text: &str,
    ) -> Result<crate::client::RawResponse, ClientError> {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": Uuid::new_v4().to_string(),
            "method": "message/send",
            "params": { "message": {
                "role": "user",
                "messageId": Uuid::new_v4().to_string(),
                "parts": [{ "kind": "text", "text": text }],
            }},
        });
        self.a2a(target, &body).await
    }
}

/// §5.6 Delegation and §5.7 activity (workspace auth on `:id`).
impl Client {
    /// `POST /workspaces/:id/delegate`: answers 202 (new) or 200 (an
    /// idempotency-key hit) with `{delegation_id, status, target_id, …}`.
    pub async fn delegate(
        &self,
        id: Uuid,
        target: Uuid,
        task: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ClientError> {
        let body = serde_json::json!({
            "target_id": target, "task": task, "idempotency_key": idempotency_key,
        });
        self.call(
            Method::POST,
            &format!("/workspaces/{id}/delegate"),
            Some(&body),
        )
        .await
    }

    /// `GET /workspaces/:id/delegations`: the newest 50 rows.
    pub async fn delegations(&self, id: Uuid) -> Result<Vec<Value>, ClientError> {
        self.call(
            Method::GET,
            &format!("/workspaces/{id}/delegations"),
            NO_BODY,
        )
        .await
    }

    /// `GET /workspaces/:id/activity?<query>` (`type`, `source`, `limit`).
    pub async fn activity(&self, id: Uuid, query: &str) -> Result<Vec<Value>, ClientError> {
        let path = if query.is_empty() {
            format!("/workspaces/{id}/activity")
        } else {
            format!("/workspaces/{id}/activity?{query}")
        };
        self.call(Method::GET, &path, NO_BODY).await
    }

    /// `POST /workspaces/:id/activity`.
    pub async fn report_activity(&self, id: Uuid, body: &Value) -> Result<Value, ClientError> {
        self.call(
            Method::POST,
            &format!("/workspaces/{id}/activity"),
            Some(body),
        )
        .await
    }

    /// `POST /workspaces/:id/notify`.
    pub async fn notify(&self, id: Uuid, message: &str) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "message": message });
        self.call(
            Method::POST,
            &format!("/workspaces/{id}/notify"),
            Some(&body),
        )
        .await
    }

    /// `GET /workspaces/:id/session-search?q=…`.
    pub async fn session_search(&self, id: Uuid, q: &str) -> Result<Vec<Value>, ClientError> {
        let q: String = q
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        self.call(
            Method::GET,
            &format!("/workspaces/{id}/session-search?q={q}"),
            NO_BODY,
        )
        .await
    }
}
