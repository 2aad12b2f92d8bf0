//! `agent_memories` on PostgreSQL: insert, owner-scoped delete and search
//! over the generated `content_tsv` column (english, GIN index).

use crate::{MemoryQuery, MemoryRow, MemoryText, Result};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use uuid::Uuid;

fn row(r: &PgRow) -> Result<MemoryRow> {
    Ok(MemoryRow {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        content: r.try_get("content")?,
        scope: r.try_get("scope")?,
        namespace: r.try_get("namespace")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) async fn insert(pool: &PgPool, m: &MemoryRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO agent_memories (id, workspace_id, content, scope, namespace, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(m.id)
    .bind(m.workspace_id)
    .bind(&m.content)
    .bind(&m.scope)
    .bind(&m.namespace)
    .bind(m.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn delete(pool: &PgPool, workspace_id: Uuid, id: Uuid) -> Result<bool> {
    let n = sqlx::query("DELETE FROM agent_memories WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// `%`, `_` and `\` in user input match themselves.
fn like_pattern(q: &str) -> String {
    let mut out = String::from("%");
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

macro_rules! select_filtered {
    () => {
        "SELECT m.id, m.workspace_id, m.content, m.scope, m.namespace, m.created_at \
         FROM agent_memories m WHERE ($1::text IS NULL OR m.scope = $1) \
         AND ($2::uuid[] IS NULL OR m.workspace_id = ANY($2)) \
         AND ($3::text IS NULL OR m.namespace = $3) "
    };
}

pub(super) async fn search(pool: &PgPool, q: &MemoryQuery) -> Result<Vec<MemoryRow>> {
    let (sql, text): (&'static str, Option<String>) = match &q.text {
        MemoryText::All => (
            concat!(select_filtered!(), "ORDER BY m.created_at DESC LIMIT $4"),
            None,
        ),
        MemoryText::Substring(t) => (
            concat!(
                select_filtered!(),
                "AND m.content ILIKE $5 ORDER BY m.created_at DESC LIMIT $4"
            ),
            Some(like_pattern(t)),
        ),
        MemoryText::FullText(t) => (
            concat!(
                select_filtered!(),
                "AND m.content_tsv @@ plainto_tsquery('english', $5) \
                 ORDER BY ts_rank(m.content_tsv, plainto_tsquery('english', $5)) DESC, \
                 m.created_at DESC LIMIT $4"
            ),
            Some(t.clone()),
        ),
    };
    let mut query = sqlx::query(sql)
        .bind(&q.scope)
        .bind(q.authors.clone())
        .bind(&q.namespace)
        .bind(q.limit);
    if let Some(t) = text {
        query = query.bind(t);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(row).collect()
}
