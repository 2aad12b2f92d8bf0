//! `agents` on PostgreSQL. The partial unique index of active rows settles
//! races: a move that loses to a concurrent assign fails as `TargetTaken`.

use super::PostgresStore;
use crate::{AgentMove, AgentRow, AgentStore, Result, agents::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::WorkspaceId;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

fn row(r: &PgRow) -> Result<AgentRow> {
    Ok(AgentRow {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        model: r.try_get::<Option<String>, _>("model")?.unwrap_or_default(),
    })
}

/// 23505: unique_violation.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

#[async_trait]
impl AgentStore for PostgresStore {
    async fn agent_active(&self, workspace: WorkspaceId) -> Result<Option<AgentRow>> {
        let r = sqlx::query(sql::ACTIVE)
            .bind(workspace.uuid())
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(row).transpose()
    }

    async fn agent_assign(
        &self,
        workspace: WorkspaceId,
        model: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AgentRow>> {
        let id = Uuid::new_v4();
        let n = sqlx::query(sql::ASSIGN)
            .bind(id)
            .bind(workspace.uuid())
            .bind(model)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok((n == 1).then(|| AgentRow {
            id,
            workspace_id: workspace.uuid(),
            model: model.to_string(),
        }))
    }

    async fn agent_replace(
        &self,
        workspace: WorkspaceId,
        model: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(AgentRow, AgentRow)>> {
        let mut tx = self.pool.begin().await?;
        let old = sqlx::query(sql::RETIRE)
            .bind(workspace.uuid())
            .bind(now)
            .bind("replaced")
            .bind("model_replaced")
            .fetch_optional(&mut *tx)
            .await?;
        let Some(old) = old.as_ref().map(row).transpose()? else {
            return Ok(None);
        };
        let id = Uuid::new_v4();
        sqlx::query(sql::ASSIGN)
            .bind(id)
            .bind(workspace.uuid())
            .bind(model)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let new = AgentRow {
            id,
            workspace_id: workspace.uuid(),
            model: model.to_string(),
        };
        Ok(Some((old, new)))
    }

    async fn agent_remove(
        &self,
        workspace: WorkspaceId,
        now: DateTime<Utc>,
    ) -> Result<Option<AgentRow>> {
        let r = sqlx::query(sql::RETIRE)
            .bind(workspace.uuid())
            .bind(now)
            .bind("removed")
            .bind("manual_removal")
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(row).transpose()
    }

    async fn agent_move(&self, from: WorkspaceId, to: WorkspaceId) -> Result<AgentMove> {
        let mut tx = self.pool.begin().await?;
        let taken = sqlx::query(sql::ACTIVE)
            .bind(to.uuid())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if taken {
            return Ok(AgentMove::TargetTaken);
        }
        let moved = match sqlx::query(sql::MOVE)
            .bind(from.uuid())
            .bind(to.uuid())
            .fetch_optional(&mut *tx)
            .await
        {
            Ok(r) => r,
            Err(e) if is_unique_violation(&e) => return Ok(AgentMove::TargetTaken),
            Err(e) => return Err(e.into()),
        };
        let Some(moved) = moved.as_ref().map(row).transpose()? else {
            return Ok(AgentMove::NoSource);
        };
        tx.commit().await?;
        Ok(AgentMove::Moved(moved))
    }
}
