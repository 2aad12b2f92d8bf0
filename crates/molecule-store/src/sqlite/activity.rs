//! `activity_logs` on SQLite: the batched writer's inserts, listings,
//! delegation tracking rows, retention and session search.

use super::SqliteStore;
use super::codec::{get_opt_json, get_opt_uuid, get_ts, get_uuid, ts};
use crate::{
    ActivityQuery, ActivityRow, ActivitySource, ActivityStore, DelegationUpdate, MemoryHit,
    NewActivity, Result, activity::sql, like_pattern,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

const INSERT: &str = "INSERT INTO activity_logs (id, workspace_id, activity_type, source_id, \
     source_label, target_id, method, summary, request_body, response_body, duration_ms, status, \
     error_detail, idempotency_key, created_at) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
     WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $2) \
     ON CONFLICT DO NOTHING";

const COLUMNS: &str = "id, workspace_id, activity_type, source_id, source_label, target_id, \
     method, summary, request_body, response_body, duration_ms, status, error_detail, \
     idempotency_key, created_at";

fn bind_insert<'q>(
    a: &'q NewActivity,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    bind_row(sqlx::query(INSERT), a)
}

/// The 15 values of one row, in `INSERT`'s column order.
fn bind_row<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    a: &'q NewActivity,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    q.bind(a.id.to_string())
        .bind(a.workspace_id.to_string())
        .bind(a.activity_type.as_str())
        .bind(a.source_id.map(|id| id.to_string()))
        .bind(&a.source_label)
        .bind(a.target_id.map(|id| id.to_string()))
        .bind(&a.method)
        .bind(&a.summary)
        .bind(a.request_text())
        .bind(a.response_text())
        .bind(a.duration_ms)
        .bind(&a.status)
        .bind(&a.error_detail)
        .bind(&a.idempotency_key)
        .bind(ts(a.created_at))
}

/// Rows per multi-row INSERT (15 parameters each).
const CHUNK: usize = 64;

/// The multi-row INSERT for `n` rows: rows of workspaces that no longer
/// exist, and idempotency-key duplicates, are skipped.
fn insert_many_sql(n: usize) -> String {
    const ROW: &str = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    let mut sql = String::from(
        "INSERT INTO activity_logs (id, workspace_id, activity_type, source_id, source_label, \
         target_id, method, summary, request_body, response_body, duration_ms, status, \
         error_detail, idempotency_key, created_at) SELECT * FROM (VALUES ",
    );
    sql.reserve(n * (ROW.len() + 1) + 80);
    for i in 0..n {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(ROW);
    }
    sql.push_str(") WHERE column2 IN (SELECT id FROM workspaces) ON CONFLICT DO NOTHING");
    sql
}

/// Rows deleted per retention statement.
pub(super) const PURGE_CHUNK: i64 = 5_000;

pub(super) fn activity_row(r: &SqliteRow) -> Result<ActivityRow> {
    Ok(ActivityRow {
        id: get_uuid(r, "id")?,
        workspace_id: get_uuid(r, "workspace_id")?,
        activity_type: crate::word(r.try_get::<&str, _>("activity_type")?)?,
        source_id: get_opt_uuid(r, "source_id")?,
        source_label: r.try_get("source_label")?,
        target_id: get_opt_uuid(r, "target_id")?,
        method: r.try_get("method")?,
        summary: r.try_get("summary")?,
        request_body: get_opt_json(r, "request_body")?,
        response_body: get_opt_json(r, "response_body")?,
        duration_ms: r.try_get("duration_ms")?,
        status: r
            .try_get::<Option<String>, _>("status")?
            .unwrap_or_default(),
        error_detail: r.try_get("error_detail")?,
        idempotency_key: r.try_get("idempotency_key")?,
        created_at: get_ts(r, "created_at")?,
    })
}

#[async_trait]
impl ActivityStore for SqliteStore {
    /// Insert `rows` in one transaction, a few multi-row statements (the
    /// statement for a full chunk is built once). Returns how many were
    /// written.
    async fn activity_insert_many(&self, rows: &[NewActivity]) -> Result<u64> {
        static FULL_CHUNK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        if rows.is_empty() {
            return Ok(0);
        }
        let mut tx = self.writer.begin().await?;
        let mut written = 0;
        for chunk in rows.chunks(CHUNK) {
            let mut q = if chunk.len() == CHUNK {
                sqlx::query(FULL_CHUNK.get_or_init(|| insert_many_sql(CHUNK)).as_str())
            } else {
                sqlx::query(sqlx::AssertSqlSafe(insert_many_sql(chunk.len())))
            };
            for a in chunk {
                q = bind_row(q, a);
            }
            written += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn activity_insert(&self, row: &NewActivity) -> Result<bool> {
        Ok(bind_insert(row)
            .execute(&self.writer)
            .await?
            .rows_affected()
            == 1)
    }

    async fn activity_by_idempotency_key(
        &self,
        workspace_id: Uuid,
        key: &str,
    ) -> Result<Option<ActivityRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM activity_logs WHERE workspace_id = $1 AND idempotency_key = $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(key)
            .fetch_optional(&self.writer)
            .await?
            .as_ref()
            .map(activity_row)
            .transpose()
    }

    async fn activity_delete(&self, id: Uuid) -> Result<bool> {
        let r = sqlx::query(sql::DELETE)
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn activity_list(&self, q: &ActivityQuery) -> Result<Vec<ActivityRow>> {
        let mut sql = format!("SELECT {COLUMNS} FROM activity_logs WHERE workspace_id = $1");
        if q.activity_type.is_some() {
            sql.push_str(" AND activity_type = $2");
        } else {
            sql.push_str(" AND $2 IS NULL");
        }
        match q.source {
            Some(ActivitySource::Canvas) => sql.push_str(" AND source_id IS NULL"),
            Some(ActivitySource::Agent) => sql.push_str(" AND source_id IS NOT NULL"),
            None => {}
        }
        if !q.methods.is_empty() {
            sql.push_str(" AND method IN (SELECT value FROM json_each($3))");
        } else {
            sql.push_str(" AND $3 IS NULL");
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT $4");
        let methods = (!q.methods.is_empty()).then(|| super::codec::json_list(&q.methods));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(q.workspace_id.to_string())
            .bind(q.activity_type.map(|t| t.as_str()))
            .bind(methods)
            .bind(q.limit.max(0))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(activity_row).collect()
    }

    async fn activity_delegation(
        &self,
        workspace_id: Uuid,
        delegation_id: &str,
    ) -> Result<Option<ActivityRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM activity_logs WHERE workspace_id = $1 AND method = 'delegate' \
             AND json_extract(request_body, '$.delegation_id') = $2 \
             ORDER BY created_at DESC LIMIT 1"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(delegation_id)
            .fetch_optional(&self.writer)
            .await?
            .as_ref()
            .map(activity_row)
            .transpose()
    }

    async fn activity_open_delegations(&self, limit: i64) -> Result<Vec<ActivityRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM activity_logs \
             WHERE method = 'delegate' AND status IN ('pending', 'dispatched') \
             AND json_extract(request_body, '$.dispatched_by') = 'platform' \
             ORDER BY created_at LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(activity_row).collect()
    }

    async fn activity_delegation_update(
        &self,
        u: &DelegationUpdate<'_>,
        result: Option<&NewActivity>,
    ) -> Result<u64> {
        let from = (!u.from.is_empty()).then(|| super::codec::json_list(u.from));
        let mut tx = self.writer.begin_with(super::BEGIN_WRITE).await?;
        let changed = sqlx::query(
            "UPDATE activity_logs SET status = $3, \
             error_detail = CASE WHEN $4 IS NOT NULL AND $4 <> '' THEN $4 ELSE error_detail END \
             WHERE workspace_id = $1 AND method = 'delegate' \
             AND json_extract(request_body, '$.delegation_id') = $2 \
             AND ($5 IS NULL OR status IN (SELECT value FROM json_each($5)))",
        )
        .bind(u.workspace_id.to_string())
        .bind(u.delegation_id)
        .bind(u.status.as_str())
        .bind(u.error)
        .bind(from)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed > 0
            && let Some(row) = result
        {
            bind_insert(row).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Delete rows older than `before`, [`PURGE_CHUNK`] rows per statement:
    /// each chunk is its own short transaction on the one write connection,
    /// so a purge of millions of rows never stalls the activity writer and the
    /// API's writes for the seconds one big `DELETE` would hold the lock.
    async fn activity_purge_before(&self, before: DateTime<Utc>) -> Result<u64> {
        let before = ts(before);
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM activity_logs WHERE rowid IN \
                 (SELECT rowid FROM activity_logs WHERE created_at < $1 LIMIT $2)",
            )
            .bind(&before)
            .bind(PURGE_CHUNK)
            .execute(&self.writer)
            .await?
            .rows_affected();
            total += n;
            if n < PURGE_CHUNK as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    async fn activity_search(
        &self,
        workspace_id: Uuid,
        q: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ActivityRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM activity_logs WHERE workspace_id = $1 AND ($2 IS NULL OR \
             lower(coalesce(summary, '')) LIKE $2 ESCAPE '\\' OR \
             lower(coalesce(method, '')) LIKE $2 ESCAPE '\\' OR \
             lower(coalesce(status, '')) LIKE $2 ESCAPE '\\' OR \
             lower(coalesce(error_detail, '')) LIKE $2 ESCAPE '\\' OR \
             lower(coalesce(request_body, '')) LIKE $2 ESCAPE '\\' OR \
             lower(coalesce(response_body, '')) LIKE $2 ESCAPE '\\') \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workspace_id.to_string())
            .bind(q.map(like_pattern))
            .bind(limit.max(0))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(activity_row).collect()
    }

    async fn memory_search_own(
        &self,
        workspace_id: Uuid,
        q: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MemoryHit>> {
        let rows = sqlx::query(
            "SELECT id, workspace_id, content, scope, namespace, created_at FROM agent_memories \
             WHERE workspace_id = $1 AND ($2 IS NULL OR lower(content) LIKE $2 ESCAPE '\\' \
             OR lower(namespace) LIKE $2 ESCAPE '\\' OR lower(scope) LIKE $2 ESCAPE '\\') \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(workspace_id.to_string())
        .bind(q.map(like_pattern))
        .bind(limit.max(0))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemoryHit {
                    id: get_uuid(r, "id")?,
                    workspace_id: get_uuid(r, "workspace_id")?,
                    content: r.try_get("content")?,
                    scope: r.try_get("scope")?,
                    namespace: r.try_get("namespace")?,
                    created_at: get_ts(r, "created_at")?,
                })
            })
            .collect()
    }
}
