//! `agent_memories` on SQLite: insert, owner-scoped delete and search with
//! FTS5 (external-content table `agent_memories_fts`, porter tokenizer).

use super::SqliteStore;
use super::codec::{get_ts, get_uuid, json_list, ts};
use crate::{MemoryQuery, MemoryRow, MemoryStore, MemoryText, Result, memories::sql};
use async_trait::async_trait;
use molecule_types::WorkspaceId;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

fn row(r: &SqliteRow) -> Result<MemoryRow> {
    Ok(MemoryRow {
        id: get_uuid(r, "id")?,
        workspace_id: get_uuid(r, "workspace_id")?,
        content: r.try_get("content")?,
        scope: r.try_get("scope")?,
        namespace: r.try_get("namespace")?,
        created_at: get_ts(r, "created_at")?,
    })
}

/// An FTS5 query that matches every word of `q` (like `plainto_tsquery`):
/// each word becomes a quoted string, so FTS5 operators and syntax in user
/// input (`AND`, `*`, `:`, `"`, parentheses) are plain text.
pub(crate) fn fts5_query(q: &str) -> String {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

const FILTERS: &str = "($1 IS NULL OR m.scope = $1) \
     AND ($2 IS NULL OR m.workspace_id IN (SELECT value FROM json_each($2))) \
     AND ($3 IS NULL OR m.namespace = $3)";

#[async_trait]
impl MemoryStore for SqliteStore {
    async fn memory_insert(&self, m: &MemoryRow) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(m.id.to_string())
            .bind(m.workspace_id.to_string())
            .bind(&m.content)
            .bind(&m.scope)
            .bind(&m.namespace)
            .bind(ts(m.created_at))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn memory_delete(&self, workspace_id: WorkspaceId, id: Uuid) -> Result<bool> {
        let n = sqlx::query(sql::DELETE)
            .bind(workspace_id.uuid().to_string())
            .bind(id.to_string())
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn memory_search(&self, q: &MemoryQuery) -> Result<Vec<MemoryRow>> {
        let authors = q.authors.as_ref().map(|a| json_list(a.iter()));
        let cols = "m.id, m.workspace_id, m.content, m.scope, m.namespace, m.created_at";
        let (sql, text) = match &q.text {
            MemoryText::All => (
                format!(
                    "SELECT {cols} FROM agent_memories m WHERE {FILTERS} \
                     ORDER BY m.created_at DESC, m.seq DESC LIMIT $4"
                ),
                None,
            ),
            MemoryText::Substring(t) => (
                format!(
                    "SELECT {cols} FROM agent_memories m WHERE {FILTERS} \
                     AND m.content LIKE $5 ESCAPE '\\' ORDER BY m.created_at DESC, m.seq DESC LIMIT $4"
                ),
                Some(crate::like_literal(t)),
            ),
            MemoryText::FullText(t) => {
                let query = fts5_query(t);
                if query.is_empty() {
                    return Ok(Vec::new());
                }
                (
                    format!(
                        "SELECT {cols} FROM agent_memories_fts f \
                         JOIN agent_memories m ON m.seq = f.rowid \
                         WHERE agent_memories_fts MATCH $5 AND {FILTERS} \
                         ORDER BY bm25(agent_memories_fts), m.created_at DESC LIMIT $4"
                    ),
                    Some(query),
                )
            }
        };
        // The statement text is built from constants only; user input is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&q.scope)
            .bind(authors)
            .bind(&q.namespace)
            .bind(q.limit);
        if let Some(t) = text {
            query = query.bind(t);
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter().map(row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts5_query_quotes_every_word() {
        assert_eq!(fts5_query("deploy pipeline"), "\"deploy\" \"pipeline\"");
        assert_eq!(fts5_query("a\" OR *x NEAR("), "\"a\" \"OR\" \"x\" \"NEAR\"");
        assert_eq!(fts5_query("  --  "), "");
    }

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(crate::like_literal("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
