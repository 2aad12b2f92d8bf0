//! `workspace_channels` and `channel_history` on SQLite.

use super::SqliteStore;
use super::codec::{get_opt_ts, get_ts, get_uuid, ts};
use crate::{
    ChannelPatch, ChannelRow, ChannelStore, HistoryEntry, Result, StoreError, channels::sql,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

fn json(column: &str, s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{column}: bad json: {e}")))
}

fn row(r: &SqliteRow) -> Result<ChannelRow> {
    let users = json("allowed_users", r.try_get("allowed_users")?)?;
    Ok(ChannelRow {
        id: get_uuid(r, "id")?,
        workspace_id: get_uuid(r, "workspace_id")?,
        channel_type: r.try_get("channel_type")?,
        config: json("channel_config", r.try_get("channel_config")?)?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        allowed_users: users
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(str::to_owned).or(Some(u.to_string())))
            .collect(),
        message_count: r.try_get("message_count")?,
        last_message_at: get_opt_ts(r, "last_message_at")?,
        created_at: get_ts(r, "created_at")?,
        updated_at: get_ts(r, "updated_at")?,
    })
}

#[async_trait]
impl ChannelStore for SqliteStore {
    async fn channel_insert(&self, c: &ChannelRow) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(c.id.to_string())
            .bind(c.workspace_id.to_string())
            .bind(&c.channel_type)
            .bind(c.config.to_string())
            .bind(c.enabled as i64)
            .bind(serde_json::to_string(&c.allowed_users).unwrap_or_else(|_| "[]".into()))
            .bind(ts(c.created_at))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn channel_list(&self, workspace_id: Uuid) -> Result<Vec<ChannelRow>> {
        let rows = sqlx::query(sql::select_channel!(
            "WHERE workspace_id = $1 ORDER BY created_at"
        ))
        .bind(workspace_id.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row).collect()
    }

    async fn channel_get(&self, id: Uuid) -> Result<Option<ChannelRow>> {
        let r = sqlx::query(sql::select_channel!("WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        r.as_ref().map(row).transpose()
    }

    async fn channel_enabled(&self) -> Result<Vec<ChannelRow>> {
        let rows = sqlx::query(sql::select_channel!(
            "WHERE enabled = 1 ORDER BY created_at"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row).collect()
    }

    async fn channel_update(
        &self,
        id: Uuid,
        workspace_id: Uuid,
        p: &ChannelPatch,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE workspace_channels SET \
             channel_config = COALESCE($3, channel_config), \
             allowed_users = COALESCE($4, allowed_users), \
             enabled = COALESCE($5, enabled), updated_at = $6 \
             WHERE id = $1 AND workspace_id = $2",
        )
        .bind(id.to_string())
        .bind(workspace_id.to_string())
        .bind(p.config.as_ref().map(Value::to_string))
        .bind(
            p.allowed_users
                .as_ref()
                .map(|u| serde_json::to_string(u).unwrap_or_else(|_| "[]".into())),
        )
        .bind(p.enabled.map(i64::from))
        .bind(ts(now))
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn channel_delete(&self, id: Uuid, workspace_id: Uuid) -> Result<bool> {
        let r = sqlx::query(sql::DELETE)
            .bind(id.to_string())
            .bind(workspace_id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn channel_counted(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(sql::COUNTED)
            .bind(id.to_string())
            .bind(ts(now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn channel_history_push(
        &self,
        channel_id: Uuid,
        chat_id: &str,
        e: &HistoryEntry,
        keep: i64,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(sql::HISTORY_PUSH)
            .bind(channel_id.to_string())
            .bind(chat_id)
            .bind(&e.role)
            .bind(&e.text)
            .bind(ts(e.at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::HISTORY_TRIM)
            .bind(channel_id.to_string())
            .bind(chat_id)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn channel_history(
        &self,
        channel_id: Uuid,
        chat_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(sql::HISTORY)
            .bind(channel_id.to_string())
            .bind(chat_id)
            .bind(ts(since))
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    role: r.try_get("role")?,
                    text: r.try_get("text")?,
                    at: get_ts(r, "created_at")?,
                })
            })
            .collect()
    }

    async fn channel_history_clear(&self, channel_id: Uuid, chat_id: &str) -> Result<()> {
        sqlx::query(sql::HISTORY_CLEAR)
            .bind(channel_id.to_string())
            .bind(chat_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn channel_history_purge_before(&self, before: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query(sql::HISTORY_PURGE)
            .bind(ts(before))
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }
}
