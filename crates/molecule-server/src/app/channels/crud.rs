//! Channel CRUD, send and test (api-contract §5.17), with the adapter's
//! validation, secret fields sealed on write and masked on read, and the
//! channel's ownership checked on every route.

use molecule_store::{ChannelPatch, ChannelRow, StoreError};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{CHANNELS_TASK, adapter, adapters};
use crate::app::App;
use crate::app::auth::WorkspaceAccess;
use crate::error::{AppError, AppResult};

impl App {
    /// `GET /channels/adapters`.
    pub fn channel_adapters(&self) -> Value {
        Value::Array(
            adapters()
                .iter()
                .map(|a| json!({ "type": a.kind(), "display_name": a.display_name() }))
                .collect(),
        )
    }

    /// `GET /workspaces/:id/channels`: secret fields masked.
    pub async fn channel_list(&self, access: WorkspaceAccess) -> AppResult<Value> {
        let rows = self
            .store
            .channel_list(access.uuid())
            .await
            .map_err(AppError::internal("failed to list channels"))?;
        let mut out = Vec::new();
        for row in rows {
            let Some(adapter) = adapter(&row.channel_type) else {
                continue;
            };
            let mut config = self
                .open_config(adapter, row.config.clone())
                .unwrap_or_else(|_| row.config.clone());
            for field in adapter.secret_fields() {
                if let Some(v) = config[*field].as_str() {
                    config[*field] = json!(mask(v));
                }
            }
            let mut v = json!({
                "id": row.id, "workspace_id": row.workspace_id,
                "channel_type": row.channel_type, "config": config,
                "enabled": row.enabled, "allowed_users": row.allowed_users,
                "message_count": row.message_count,
                "created_at": row.created_at, "updated_at": row.updated_at,
            });
            if let Some(at) = row.last_message_at {
                v["last_message_at"] = json!(at);
            }
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    /// `POST /workspaces/:id/channels`.
    pub async fn channel_create(&self, access: WorkspaceAccess, body: &Value) -> AppResult<Value> {
        let kind = body["channel_type"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AppError::invalid("channel_type is required"))?;
        let adapter = adapter(kind)
            .ok_or_else(|| AppError::invalid(format!("unsupported channel_type: {kind}")))?;
        let config = match &body["config"] {
            Value::Null => json!({}),
            v @ Value::Object(_) => v.clone(),
            _ => return Err(AppError::invalid("invalid config: must be an object")),
        };
        adapter
            .validate(&config)
            .map_err(|e| AppError::invalid(format!("invalid config: {e}")))?;
        let allowed_users = users(&body["allowed_users"])?;
        self.workspace_row(access.uuid()).await?;
        let now = self.now();
        let row = ChannelRow {
            id: Uuid::new_v4(),
            workspace_id: access.uuid(),
            channel_type: kind.to_string(),
            config: self.seal_config(adapter, config),
            enabled: body["enabled"].as_bool().unwrap_or(true),
            allowed_users,
            message_count: 0,
            last_message_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store.channel_insert(&row).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                AppError::Conflict(format!("the workspace already has a {kind} channel"))
            }
            other => AppError::internal("failed to create channel")(other),
        })?;
        self.tasks.activate(CHANNELS_TASK);
        Ok(json!({ "id": row.id, "channel_type": kind, "enabled": row.enabled }))
    }

    /// `PATCH /workspaces/:id/channels/:cid`: a new config is validated
    /// (the reference stored it unchecked).
    pub async fn channel_update(
        &self,
        access: WorkspaceAccess,
        id: Uuid,
        body: &Value,
    ) -> AppResult<Value> {
        let row = self.owned_channel(access, id).await?;
        let adapter = adapter(&row.channel_type)
            .ok_or_else(|| AppError::invalid("unsupported channel_type"))?;
        let config = match &body["config"] {
            Value::Null => None,
            v @ Value::Object(_) => {
                adapter
                    .validate(v)
                    .map_err(|e| AppError::invalid(format!("invalid config: {e}")))?;
                Some(self.seal_config(adapter, v.clone()))
            }
            _ => return Err(AppError::invalid("invalid config: must be an object")),
        };
        let patch = ChannelPatch {
            config,
            allowed_users: match &body["allowed_users"] {
                Value::Null => None,
                v => Some(users(v)?),
            },
            enabled: body["enabled"].as_bool(),
        };
        self.store
            .channel_update(id, access.uuid(), &patch, self.now())
            .await
            .map_err(AppError::internal("failed to update channel"))?;
        self.tasks.activate(CHANNELS_TASK);
        Ok(json!({ "status": "updated" }))
    }

    /// `DELETE /workspaces/:id/channels/:cid`.
    pub async fn channel_delete(&self, access: WorkspaceAccess, id: Uuid) -> AppResult<Value> {
        let deleted = self
            .store
            .channel_delete(id, access.uuid())
            .await
            .map_err(AppError::internal("failed to delete channel"))?;
        if !deleted {
            return Err(AppError::not_found("channel not found"));
        }
        self.tasks.activate(CHANNELS_TASK);
        Ok(json!({ "status": "deleted" }))
    }

    /// The channel `id` if it belongs to the workspace (the reference did
    /// not check for send and test).
    async fn owned_channel(&self, access: WorkspaceAccess, id: Uuid) -> AppResult<ChannelRow> {
        let row = self
            .store
            .channel_get(id)
            .await
            .map_err(AppError::internal("failed to read channel"))?;
        row.filter(|r| r.workspace_id == access.uuid())
            .ok_or_else(|| AppError::not_found("channel not found"))
    }

    /// `POST …/channels/:cid/send` (and `/test` with a fixed text): to every
    /// chat of the channel.
    pub async fn channel_send(
        &self,
        access: WorkspaceAccess,
        id: Uuid,
        text: &str,
    ) -> AppResult<()> {
        let row = self.owned_channel(access, id).await?;
        let ch = self.open_channel(row).map_err(|e| AppError::Internal {
            public: "failed to open the channel's config",
            cause: e,
        })?;
        let adapter = adapter(&ch.row.channel_type).ok_or(AppError::Internal {
            public: "unsupported channel_type",
            cause: ch.row.channel_type.clone(),
        })?;
        for chat in adapter.chats(&ch.config) {
            adapter
                .send(self, &ch.config, &chat, text)
                .await
                .map_err(|e| AppError::Upstream(format!("send failed: {e}")))?;
        }
        self.channel_sent(&ch.row, "", "outbound").await;
        Ok(())
    }
}

/// `allowed_users`: a list of ids or names (numbers kept as text).
fn users(v: &Value) -> AppResult<Vec<String>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|u| match u {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(AppError::invalid(
                    "allowed_users must be strings or numbers",
                )),
            })
            .collect(),
        _ => Err(AppError::invalid("allowed_users must be a list")),
    }
}

/// A secret as listed: its first and last four characters.
fn mask(v: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    if chars.len() <= 8 {
        return "***".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_to_their_ends() {
        assert_eq!(mask("123456:ABCDEFGHIJ"), "1234...GHIJ");
        assert_eq!(mask("short"), "***");
    }
}
