//! `structure_events` on PostgreSQL: the append-only event log.
//! Broadcasting over WebSocket is the server's job.

use super::PostgresStore;
use crate::{EventRow, EventStore, NewEvent, Result, events::sql};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

fn event_row(r: &PgRow) -> Result<EventRow> {
    Ok(EventRow {
        id: r.try_get("id")?,
        event_type: r.try_get("event_type")?,
        workspace_id: r.try_get("workspace_id")?,
        payload: r
            .try_get::<Option<Value>, _>("payload")?
            .unwrap_or(Value::Null),
        created_at: r.try_get("created_at")?,
    })
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn event_insert(&self, event: &NewEvent) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(event.id)
            .bind(&event.event_type)
            .bind(event.workspace_id)
            .bind(&event.payload)
            .bind(event.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn event_list(&self, workspace_id: Option<Uuid>, limit: i64) -> Result<Vec<EventRow>> {
        // PostgreSQL rejects a negative LIMIT; SQLite reads it as "no limit".
        let limit = limit.max(0);
        let rows = match workspace_id {
            Some(id) => {
                sqlx::query(sql::LIST_OF_WORKSPACE)
                    .bind(id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(sql::LIST_ALL)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(event_row).collect()
    }
}
