//! `workspace_channels` and `channel_history` on PostgreSQL.

use super::PostgresStore;
use crate::{ChannelPatch, ChannelRow, ChannelStore, HistoryEntry, Result, channels::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

fn row(r: &PgRow) -> Result<ChannelRow> {
    let users: Value = r.try_get("allowed_users")?;
    Ok(ChannelRow {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        channel_type: r.try_get("channel_type")?,
        config: r.try_get("channel_config")?,
        enabled: r.try_get("enabled")?,
        allowed_users: users
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(str::to_owned).or(Some(u.to_string())))
            .collect(),
        message_count: r.try_get::<i32, _>("message_count")?.into(),
        last_message_at: r.try_get("last_message_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn users(u: &[String]) -> Value {
    Value::Array(u.iter().cloned().map(Value::String).collect())
}

#[async_trait]
impl ChannelStore for PostgresStore {
    async fn channel_insert(&self, c: &ChannelRow) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(c.id)
            .bind(c.workspace_id)
            .bind(&c.channel_type)
            .bind(&c.config)
            .bind(c.enabled)
            .bind(users(&c.allowed_users))
            .bind(c.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn channel_list(&self, workspace_id: Uuid) -> Result<Vec<ChannelRow>> {
        let rows = sqlx::query(sql::select_channel!(
            "WHERE workspace_id = $1 ORDER BY created_at"
        ))
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    async fn channel_get(&self, id: Uuid) -> Result<Option<ChannelRow>> {
        let r = sqlx::query(sql::select_channel!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(row).transpose()
    }

    async fn channel_enabled(&self) -> Result<Vec<ChannelRow>> {
        let rows = sqlx::query(sql::select_channel!(
            "WHERE enabled = true ORDER BY created_at"
        ))
        .fetch_all(&self.pool)
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
        .bind(id)
        .bind(workspace_id)
        .bind(p.config.as_ref())
        .bind(p.allowed_users.as_deref().map(users))
        .bind(p.enabled)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn channel_delete(&self, id: Uuid, workspace_id: Uuid) -> Result<bool> {
        let r = sqlx::query(sql::DELETE)
            .bind(id)
            .bind(workspace_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn channel_counted(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(sql::COUNTED)
            .bind(id)
            .bind(now)
            .execute(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::HISTORY_PUSH)
            .bind(channel_id)
            .bind(chat_id)
            .bind(&e.role)
            .bind(&e.text)
            .bind(e.at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::HISTORY_TRIM)
            .bind(channel_id)
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
            .bind(channel_id)
            .bind(chat_id)
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    role: r.try_get("role")?,
                    text: r.try_get("text")?,
                    at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn channel_history_clear(&self, channel_id: Uuid, chat_id: &str) -> Result<()> {
        sqlx::query(sql::HISTORY_CLEAR)
            .bind(channel_id)
            .bind(chat_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn channel_history_purge_before(&self, before: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query(sql::HISTORY_PURGE)
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
