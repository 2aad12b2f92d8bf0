//! `structure_events` on SQLite: the append-only event log. Broadcasting
//! over WebSocket is the server's job.

use super::SqliteStore;
use super::codec::{get_opt_json, get_opt_uuid, get_ts, get_uuid, ts};
use crate::{EventRow, EventStore, NewEvent, Result, events::sql};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

fn event_row(r: &SqliteRow) -> Result<EventRow> {
    Ok(EventRow {
        id: get_uuid(r, "id")?,
        event_type: r.try_get("event_type")?,
        workspace_id: get_opt_uuid(r, "workspace_id")?,
        payload: get_opt_json(r, "payload")?.unwrap_or(Value::Null),
        created_at: get_ts(r, "created_at")?,
    })
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn event_insert(&self, event: &NewEvent) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(event.id.to_string())
            .bind(&event.event_type)
            .bind(event.workspace_id.map(|id| id.to_string()))
            .bind(event.payload.to_string())
            .bind(ts(event.created_at))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn event_list(&self, workspace_id: Option<Uuid>, limit: i64) -> Result<Vec<EventRow>> {
        let limit = limit.max(0);
        let rows = match workspace_id {
            Some(id) => {
                sqlx::query(sql::LIST_OF_WORKSPACE)
                    .bind(id.to_string())
                    .bind(limit)
                    .fetch_all(&self.reader)
                    .await?
            }
            None => {
                sqlx::query(sql::LIST_ALL)
                    .bind(limit)
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        rows.iter().map(event_row).collect()
    }
}
