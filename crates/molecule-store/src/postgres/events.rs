//! `structure_events` on PostgreSQL: the append-only event log.
//! Broadcasting over WebSocket is the server's job.

use crate::{EventRow, NewEvent, Result};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use uuid::Uuid;

pub(super) async fn insert(pool: &PgPool, event: &NewEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO structure_events (id, event_type, workspace_id, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event.id)
    .bind(&event.event_type)
    .bind(event.workspace_id)
    .bind(&event.payload)
    .bind(event.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn list(
    pool: &PgPool,
    workspace_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EventRow>> {
    // PostgreSQL rejects a negative LIMIT; SQLite reads it as "no limit".
    let limit = limit.max(0);
    let rows =
        match workspace_id {
            Some(id) => sqlx::query(
                "SELECT id, event_type, workspace_id, payload, created_at FROM structure_events \
                 WHERE workspace_id = $1 ORDER BY created_at DESC, id LIMIT $2",
            )
            .bind(id)
            .bind(limit)
            .fetch_all(pool)
            .await?,
            None => sqlx::query(
                "SELECT id, event_type, workspace_id, payload, created_at FROM structure_events \
                 ORDER BY created_at DESC, id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?,
        };
    rows.iter().map(event_row).collect()
}

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
