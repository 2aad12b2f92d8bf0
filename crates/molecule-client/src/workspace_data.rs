//! Typed methods for a workspace's schedules, secrets, memories, approvals
//! and config (api-contract §5.8–§5.11).

use molecule_types::workspace_data::{
    Approval, ApprovalStatus, CommitMemory, CreateApproval, CreateSchedule, DecideApproval, Memory,
    MemoryCommitted, MemoryEntry, MemorySearch, PendingApproval, Schedule, ScheduleCreated,
    ScheduleFired, ScheduleHealth, ScheduleRun, SecretEntry, SetMemoryEntry, SetSecret,
};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::client::Client;
use crate::client::{NO_BODY, encode};
use crate::error::ClientError;

/// §5.8 Config and schedules.
impl Client {
    /// `GET /workspaces/:id/config`: `{data}`.
    pub async fn config(&self, ws: Uuid) -> Result<Value, ClientError> {
        self.call(Method::GET, &format!("/workspaces/{ws}/config"), NO_BODY)
            .await
    }

    /// `PATCH /workspaces/:id/config`: shallow merge of an object.
    pub async fn patch_config(&self, ws: Uuid, patch: &Value) -> Result<Value, ClientError> {
        self.call(
            Method::PATCH,
            &format!("/workspaces/{ws}/config"),
            Some(patch),
        )
        .await
    }

    pub async fn list_schedules(&self, ws: Uuid) -> Result<Vec<Schedule>, ClientError> {
        self.call(Method::GET, &format!("/workspaces/{ws}/schedules"), NO_BODY)
            .await
    }

    pub async fn create_schedule(
        &self,
        ws: Uuid,
        body: &CreateSchedule,
    ) -> Result<ScheduleCreated, ClientError> {
        self.call(
            Method::POST,
            &format!("/workspaces/{ws}/schedules"),
            Some(body),
        )
        .await
    }

    /// `PATCH …/schedules/:sid` with any of `name, cron_expr, timezone,
    /// prompt, enabled`.
    pub async fn patch_schedule(
        &self,
        ws: Uuid,
        sid: Uuid,
        patch: &Value,
    ) -> Result<Value, ClientError> {
        self.call(
            Method::PATCH,
            &format!("/workspaces/{ws}/schedules/{sid}"),
            Some(patch),
        )
        .await
    }

    pub async fn delete_schedule(&self, ws: Uuid, sid: Uuid) -> Result<Value, ClientError> {
        self.call(
            Method::DELETE,
            &format!("/workspaces/{ws}/schedules/{sid}"),
            NO_BODY,
        )
        .await
    }

    /// `POST …/schedules/:sid/run`: fires now.
    pub async fn run_schedule(&self, ws: Uuid, sid: Uuid) -> Result<ScheduleFired, ClientError> {
        self.call(
            Method::POST,
            &format!("/workspaces/{ws}/schedules/{sid}/run"),
            NO_BODY,
        )
        .await
    }

    pub async fn schedule_history(
        &self,
        ws: Uuid,
        sid: Uuid,
    ) -> Result<Vec<ScheduleRun>, ClientError> {
        self.call(
            Method::GET,
            &format!("/workspaces/{ws}/schedules/{sid}/history"),
            NO_BODY,
        )
        .await
    }

    /// `GET …/schedules/health` as the client's `X-Workspace-ID`.
    pub async fn schedule_health(&self, ws: Uuid) -> Result<Vec<ScheduleHealth>, ClientError> {
        self.call(
            Method::GET,
            &format!("/workspaces/{ws}/schedules/health"),
            NO_BODY,
        )
        .await
    }
}

/// §5.10 Secrets.
impl Client {
    pub async fn list_secrets(&self, ws: Uuid) -> Result<Vec<SecretEntry>, ClientError> {
        self.call(Method::GET, &format!("/workspaces/{ws}/secrets"), NO_BODY)
            .await
    }

    pub async fn set_secret(&self, ws: Uuid, key: &str, value: &str) -> Result<Value, ClientError> {
        let body = SetSecret {
            key: key.into(),
            value: value.into(),
        };
        self.call(
            Method::POST,
            &format!("/workspaces/{ws}/secrets"),
            Some(&body),
        )
        .await
    }

    pub async fn delete_secret(&self, ws: Uuid, key: &str) -> Result<Value, ClientError> {
        self.call(
            Method::DELETE,
            &format!("/workspaces/{ws}/secrets/{}", encode(key)),
            NO_BODY,
        )
        .await
    }

    /// `GET …/secrets/values`: plaintext, workspace over global.
    pub async fn secret_values(&self, ws: Uuid) -> Result<BTreeMap<String, String>, ClientError> {
        self.call(
            Method::GET,
            &format!("/workspaces/{ws}/secrets/values"),
            NO_BODY,
        )
        .await
    }

    pub async fn list_global_secrets(&self) -> Result<Vec<SecretEntry>, ClientError> {
        self.call(Method::GET, "/settings/secrets", NO_BODY).await
    }

    pub async fn set_global_secret(&self, key: &str, value: &str) -> Result<Value, ClientError> {
        let body = SetSecret {
            key: key.into(),
            value: value.into(),
        };
        self.call(Method::PUT, "/settings/secrets", Some(&body))
            .await
    }

    pub async fn delete_global_secret(&self, key: &str) -> Result<Value, ClientError> {
        self.call(
            Method::DELETE,
            &format!("/settings/secrets/{}", encode(key)),
            NO_BODY,
        )
        .await
    }
}

/// §5.9 Memory.
impl Client {
    pub async fn set_memory(&self, ws: Uuid, body: &SetMemoryEntry) -> Result<Value, ClientError> {
        self.call(
            Method::POST,
            &format!("/workspaces/{ws}/memory"),
            Some(body),
        )
        .await
    }

    pub async fn memory(&self, ws: Uuid, key: &str) -> Result<MemoryEntry, ClientError> {
        self.call(
            Method::GET,
            &format!("/workspaces/{ws}/memory/{}", encode(key)),
            NO_BODY,
        )
        .await
    }

    pub async fn list_memory(&self, ws: Uuid) -> Result<Vec<MemoryEntry>, ClientError> {
        self.call(Method::GET, &format!("/workspaces/{ws}/memory"), NO_BODY)
            .await
    }

    pub async fn commit_memory(
        &self,
        ws: Uuid,
        body: &CommitMemory,
    ) -> Result<MemoryCommitted, ClientError> {
        self.call(
            Method::POST,
            &format!("/workspaces/{ws}/memories"),
            Some(body),
        )
        .await
    }

    pub async fn search_memories(
        &self,
        ws: Uuid,
        q: &MemorySearch,
    ) -> Result<Vec<Memory>, ClientError> {
        let mut query = Vec::new();
        for (k, v) in [
            ("scope", &q.scope),
            ("q", &q.q),
            ("namespace", &q.namespace),
        ] {
            if let Some(v) = v {
                query.push(format!("{k}={}", encode(v)));
            }
        }
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{}", query.join("&"))
        };
        self.call(
            Method::GET,
            &format!("/workspaces/{ws}/memories{query}"),
            NO_BODY,
        )
        .await
    }
}

/// §5.11 Approvals.
impl Client {
    pub async fn request_approval(
        &self,
        ws: Uuid,
        body: &CreateApproval,
    ) -> Result<ApprovalStatus, ClientError> {
        self.call(
            Method::POST,
            &format!("/workspaces/{ws}/approvals"),
            Some(body),
        )
        .await
    }

    pub async fn list_approvals(&self, ws: Uuid) -> Result<Vec<Approval>, ClientError> {
        self.call(Method::GET, &format!("/workspaces/{ws}/approvals"), NO_BODY)
            .await
    }

    pub async fn decide_approval(
        &self,
        ws: Uuid,
        approval: Uuid,
        body: &DecideApproval,
    ) -> Result<ApprovalStatus, ClientError> {
        self.call(
            Method::POST,
            &format!("/workspaces/{ws}/approvals/{approval}/decide"),
            Some(body),
        )
        .await
    }

    /// `GET /approvals/pending` (admin auth).
    pub async fn pending_approvals(&self) -> Result<Vec<PendingApproval>, ClientError> {
        self.call(Method::GET, "/approvals/pending", NO_BODY).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(super::encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(super::encode("KEY_1.x~"), "KEY_1.x~");
    }
}
