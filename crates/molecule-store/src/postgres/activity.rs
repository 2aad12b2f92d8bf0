//! `activity_logs` on PostgreSQL: the batched writer's inserts, listings,
//! delegation tracking rows, retention and session search.

use super::PostgresStore;
use crate::{
    ActivityQuery, ActivityRow, ActivitySource, ActivityStore, DelegationUpdate, MemoryHit,
    NewActivity, Result, activity::sql, like_pattern,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use std::borrow::Cow;
use uuid::Uuid;

const COLUMNS: &str = "id, workspace_id, activity_type, source_id, source_label, target_id, \
     method, summary, request_body, response_body, duration_ms, status, error_detail, \
     idempotency_key, created_at";

/// Text as PostgreSQL stores it: it refuses the NUL character in `text`
/// (a JSON-RPC method or an agent's error can carry one), and a refused
/// row would fail the writer's whole batch. NUL becomes U+FFFD; text
/// without one is bound as it is, not copied.
fn pg_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// JSON text as `jsonb` stores it: it refuses the escape `\u0000`, which
/// becomes `\ufffd` (escaped backslashes are told apart).
fn pg_json(json: String) -> String {
    if !json.contains("\\u0000") {
        return json;
    }
    let mut out = String::with_capacity(json.len());
    let mut rest = json.as_str();
    while let Some(at) = rest.find('\\') {
        let (before, escape) = rest.split_at(at);
        out.push_str(before);
        if let Some(after) = escape.strip_prefix("\\u0000") {
            out.push_str("\\ufffd");
            rest = after;
        } else {
            // `\\` or `\"` or another escape: copied whole, so the next
            // backslash found starts an escape.
            let len = 1 + escape[1..].chars().next().map_or(0, char::len_utf8);
            out.push_str(&escape[..len]);
            rest = &escape[len..];
        }
    }
    out.push_str(rest);
    out
}

/// Rows per multi-row INSERT (15 parameters each).
const CHUNK: usize = 64;

/// One multi-row INSERT of at most [`CHUNK`] rows.
async fn insert_chunk<'c>(
    db: impl sqlx::Executor<'c, Database = sqlx::Postgres>,
    rows: &[NewActivity],
) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
        "INSERT INTO activity_logs ({COLUMNS}) SELECT v.* FROM ("
    ));
    q.push_values(rows, |mut b, a| {
        b.push_bind(a.id)
            .push_bind(a.workspace_id)
            .push_bind(a.activity_type.as_str())
            .push_bind(a.source_id)
            .push_bind(a.source_label.as_deref().map(pg_text))
            .push_bind(a.target_id)
            .push_bind(a.method.as_deref().map(pg_text))
            .push_bind(a.summary.as_deref().map(pg_text))
            .push_bind(a.request_text().map(pg_json))
            .push_unseparated("::jsonb")
            .push_bind(a.response_text().map(pg_json))
            .push_unseparated("::jsonb")
            .push_bind(a.duration_ms.map(|d| d.clamp(0, i32::MAX as i64) as i32))
            .push_bind(pg_text(&a.status))
            .push_bind(a.error_detail.as_deref().map(pg_text))
            .push_bind(a.idempotency_key.as_deref().map(pg_text))
            .push_bind(a.created_at);
    });
    q.push(format!(
        ") AS v({COLUMNS}) \
         WHERE EXISTS (SELECT 1 FROM workspaces w WHERE w.id = v.workspace_id) \
         ON CONFLICT DO NOTHING"
    ));
    Ok(q.build().execute(db).await?.rows_affected())
}

pub(super) fn activity_row(r: &PgRow) -> Result<ActivityRow> {
    Ok(ActivityRow {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        activity_type: crate::word(r.try_get::<&str, _>("activity_type")?)?,
        source_id: r.try_get("source_id")?,
        source_label: r.try_get("source_label")?,
        target_id: r.try_get("target_id")?,
        method: r.try_get("method")?,
        summary: r.try_get("summary")?,
        request_body: r.try_get("request_body")?,
        response_body: r.try_get("response_body")?,
        duration_ms: r.try_get::<Option<i32>, _>("duration_ms")?.map(i64::from),
        status: r
            .try_get::<Option<String>, _>("status")?
            .unwrap_or_default(),
        error_detail: r.try_get("error_detail")?,
        idempotency_key: r.try_get("idempotency_key")?,
        created_at: r
            .try_get::<Option<DateTime<Utc>>, _>("created_at")?
            .unwrap_or_default(),
    })
}

#[async_trait]
impl ActivityStore for PostgresStore {
    /// Insert `rows` (one statement per [`CHUNK`], in one transaction when
    /// there are several). Rows of workspaces that no longer exist, and
    /// idempotency-key duplicates, are skipped; returns how many were written.
    async fn activity_insert_many(&self, rows: &[NewActivity]) -> Result<u64> {
        if rows.len() <= CHUNK {
            return insert_chunk(&self.pool, rows).await;
        }
        let mut tx = self.pool.begin().await?;
        let mut written = 0;
        for chunk in rows.chunks(CHUNK) {
            written += insert_chunk(&mut *tx, chunk).await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn activity_insert(&self, row: &NewActivity) -> Result<bool> {
        Ok(insert_chunk(&self.pool, std::slice::from_ref(row)).await? == 1)
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
            .bind(workspace_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(activity_row)
            .transpose()
    }

    async fn activity_delete(&self, id: Uuid) -> Result<bool> {
        let r = sqlx::query(sql::DELETE)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn activity_list(&self, q: &ActivityQuery) -> Result<Vec<ActivityRow>> {
        let mut sql = format!(
            "SELECT {COLUMNS} FROM activity_logs WHERE workspace_id = $1 \
             AND ($2::text IS NULL OR activity_type = $2) \
             AND (cardinality($3::text[]) = 0 OR method = ANY($3))"
        );
        match q.source {
            Some(ActivitySource::Canvas) => sql.push_str(" AND source_id IS NULL"),
            Some(ActivitySource::Agent) => sql.push_str(" AND source_id IS NOT NULL"),
            None => {}
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT $4");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(q.workspace_id)
            .bind(q.activity_type.map(|t| t.as_str()))
            .bind(&q.methods)
            .bind(q.limit.max(0))
            .fetch_all(&self.pool)
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
             AND request_body->>'delegation_id' = $2 ORDER BY created_at DESC LIMIT 1"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workspace_id)
            .bind(delegation_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(activity_row)
            .transpose()
    }

    async fn activity_open_delegations(&self, limit: i64) -> Result<Vec<ActivityRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM activity_logs \
             WHERE method = 'delegate' AND status IN ('pending', 'dispatched') \
             AND request_body->>'dispatched_by' = 'platform' \
             ORDER BY created_at LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(activity_row).collect()
    }

    async fn activity_delegation_update(
        &self,
        u: &DelegationUpdate<'_>,
        result: Option<&NewActivity>,
    ) -> Result<u64> {
        let from: Vec<&str> = u.from.iter().map(|s| s.as_str()).collect();
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE activity_logs SET status = $3, \
             error_detail = CASE WHEN coalesce($4::text, '') <> '' THEN $4 ELSE error_detail END \
             WHERE workspace_id = $1 AND method = 'delegate' \
             AND request_body->>'delegation_id' = $2 \
             AND (cardinality($5::text[]) = 0 OR status = ANY($5))",
        )
        .bind(u.workspace_id)
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
            insert_chunk(&mut *tx, std::slice::from_ref(row)).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn activity_purge_before(&self, before: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query("DELETE FROM activity_logs WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn activity_search(
        &self,
        workspace_id: Uuid,
        q: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ActivityRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM activity_logs WHERE workspace_id = $1 AND ($2::text IS NULL OR \
             lower(coalesce(summary, '')) LIKE $2 ESCAPE '\\' OR \
             lower(coalesce(method, '')) LIKE $2 ESCAPE '\\' OR \
             lower(coalesce(status, '')) LIKE $2 ESCAPE '\\' OR \
             lower(coalesce(error_detail, '')) LIKE $2 ESCAPE '\\' OR \
             lower(coalesce(request_body::text, '')) LIKE $2 ESCAPE '\\' OR \
             lower(coalesce(response_body::text, '')) LIKE $2 ESCAPE '\\') \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workspace_id)
            .bind(q.map(like_pattern))
            .bind(limit.max(0))
            .fetch_all(&self.pool)
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
             WHERE workspace_id = $1 AND ($2::text IS NULL OR lower(content) LIKE $2 ESCAPE '\\' \
             OR lower(namespace) LIKE $2 ESCAPE '\\' OR lower(scope) LIKE $2 ESCAPE '\\') \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(workspace_id)
        .bind(q.map(like_pattern))
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemoryHit {
                    id: r.try_get("id")?,
                    workspace_id: r.try_get("workspace_id")?,
                    content: r.try_get("content")?,
                    scope: r.try_get("scope")?,
                    namespace: r.try_get("namespace")?,
                    created_at: r
                        .try_get::<Option<DateTime<Utc>>, _>("created_at")?
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced_where_postgres_refuses_it() {
        assert_eq!(pg_text("a\0b"), "a\u{FFFD}b");
        assert_eq!(pg_text("plain"), "plain");
        assert_eq!(
            pg_json(r#"{"t":"a\u0000b","u":"\\u0000","v":"\\\u0000"}"#.into()),
            r#"{"t":"a\ufffdb","u":"\\u0000","v":"\\\ufffd"}"#
        );
        let same = r#"{"t":"\u0001 \\u0000 ok"}"#.to_string();
        assert_eq!(pg_json(same.clone()), same);
        for doc in [r#""\u0000""#, r#"["\\", "\u0000\u0000", "é\u0000"]"#] {
            let fixed = pg_json(doc.to_string());
            let v: serde_json::Value = serde_json::from_str(&fixed).unwrap();
            assert!(!v.to_string().contains("\\u0000"), "{fixed}");
        }
    }
}
