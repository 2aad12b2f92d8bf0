//! `agent_memories` on PostgreSQL: insert, owner-scoped delete and search
//! over the generated `content_tsv` column (english, GIN index).

use super::PostgresStore;
use crate::{MemoryQuery, MemoryRow, MemoryStore, MemoryText, Result, memories::sql};
use async_trait::async_trait;
use molecule_types::WorkspaceId;
use sqlx::Row;
use sqlx::postgres::PgRow;
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

macro_rules! select_filtered {
    () => {
        "SELECT m.id, m.workspace_id, m.content, m.scope, m.namespace, m.created_at \
         FROM agent_memories m WHERE ($1::text IS NULL OR m.scope = $1) \
         AND ($2::uuid[] IS NULL OR m.workspace_id = ANY($2)) \
         AND ($3::text IS NULL OR m.namespace = $3) "
    };
}

#[async_trait]
impl MemoryStore for PostgresStore {
    async fn memory_insert(&self, m: &MemoryRow) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(m.id)
            .bind(m.workspace_id)
            .bind(&m.content)
            .bind(&m.scope)
            .bind(&m.namespace)
            .bind(m.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn memory_delete(&self, workspace_id: WorkspaceId, id: Uuid) -> Result<bool> {
        let n = sqlx::query(sql::DELETE)
            .bind(workspace_id.uuid())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn memory_search(&self, q: &MemoryQuery) -> Result<Vec<MemoryRow>> {
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
                Some(crate::like_literal(t)),
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
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }
}
