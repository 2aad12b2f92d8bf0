//! `activity_logs` on SQLite.

use super::SqliteStore;
use super::codec::ts;
use crate::{NewActivity, Result};

const INSERT: &str = "INSERT INTO activity_logs (id, workspace_id, activity_type, source_id, \
     source_label, target_id, method, summary, request_body, response_body, duration_ms, status, \
     error_detail, idempotency_key, created_at) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
     WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $2) \
     ON CONFLICT DO NOTHING";

/// Insert `rows` in one transaction. Rows of workspaces that no longer
/// exist, and idempotency-key duplicates, are skipped; returns how many
/// were written.
pub(super) async fn insert_many(s: &SqliteStore, rows: &[NewActivity]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tx = s.writer.begin().await?;
    let mut written = 0;
    for a in rows {
        written += sqlx::query(INSERT)
            .bind(a.id.to_string())
            .bind(a.workspace_id.to_string())
            .bind(&a.activity_type)
            .bind(a.source_id.map(|id| id.to_string()))
            .bind(&a.source_label)
            .bind(a.target_id.map(|id| id.to_string()))
            .bind(&a.method)
            .bind(&a.summary)
            .bind(a.request_body.as_ref().map(|v| v.to_string()))
            .bind(a.response_body.as_ref().map(|v| v.to_string()))
            .bind(a.duration_ms)
            .bind(&a.status)
            .bind(&a.error_detail)
            .bind(&a.idempotency_key)
            .bind(ts(a.created_at))
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(written)
}
