//! `structure_events` on SQLite: the append-only event log. Broadcasting
//! over WebSocket is the server's job.

use super::SqliteStore;
use super::codec::{get_opt_json, get_opt_uuid, get_ts, get_uuid, ts};
use crate::{EventRow, NewEvent, Result};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

pub(super) async fn insert(s: &SqliteStore, event: &NewEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO structure_events (id, event_type, workspace_id, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event.id.to_string())
    .bind(&event.event_type)
    .bind(event.workspace_id.map(|id| id.to_string()))
    .bind(event.payload.to_string())
    .bind(ts(event.created_at))
    .execute(&s.writer)
    .await?;
    Ok(())
}

pub(super) async fn list(
    s: &SqliteStore,
    workspace_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EventRow>> {
    let limit = limit.max(0);
    let rows =
        match workspace_id {
            Some(id) => sqlx::query(
                "SELECT id, event_type, workspace_id, payload, created_at FROM structure_events \
                 WHERE workspace_id = $1 ORDER BY created_at DESC, id LIMIT $2",
            )
            .bind(id.to_string())
            .bind(limit)
            .fetch_all(&s.reader)
            .await?,
            None => sqlx::query(
                "SELECT id, event_type, workspace_id, payload, created_at FROM structure_events \
                 ORDER BY created_at DESC, id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&s.reader)
            .await?,
        };
    rows.iter().map(event_row).collect()
}

fn event_row(r: &SqliteRow) -> Result<EventRow> {
    Ok(EventRow {
        id: get_uuid(r, "id")?,
        event_type: r.try_get("event_type")?,
        workspace_id: get_opt_uuid(r, "workspace_id")?,
        payload: get_opt_json(r, "payload")?.unwrap_or(Value::Null),
        created_at: get_ts(r, "created_at")?,
    })
}
