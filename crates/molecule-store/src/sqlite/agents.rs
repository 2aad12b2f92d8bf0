//! `agents` on SQLite: changes in write transactions on the writer.

use super::codec::{get_uuid, ts};
use super::{BEGIN_WRITE, SqliteStore};
use crate::{AgentMove, AgentRow, AgentStore, Result, agents::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use molecule_types::WorkspaceId;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

fn row(r: &SqliteRow) -> Result<AgentRow> {
    Ok(AgentRow {
        id: get_uuid(r, "id")?,
        workspace_id: get_uuid(r, "workspace_id")?,
        model: r.try_get::<Option<String>, _>("model")?.unwrap_or_default(),
    })
}

#[async_trait]
impl AgentStore for SqliteStore {
    async fn agent_active(&self, workspace: WorkspaceId) -> Result<Option<AgentRow>> {
        let r = sqlx::query(sql::ACTIVE)
            .bind(workspace.to_string())
            .fetch_optional(&self.reader)
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
            .bind(id.to_string())
            .bind(workspace.to_string())
            .bind(model)
            .bind(ts(now))
            .execute(&self.writer)
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
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let old = sqlx::query(sql::RETIRE)
            .bind(workspace.to_string())
            .bind(ts(now))
            .bind("replaced")
            .bind("model_replaced")
            .fetch_optional(&mut *tx)
            .await?;
        let Some(old) = old.as_ref().map(row).transpose()? else {
            return Ok(None);
        };
        let id = Uuid::new_v4();
        sqlx::query(sql::ASSIGN)
            .bind(id.to_string())
            .bind(workspace.to_string())
            .bind(model)
            .bind(ts(now))
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
            .bind(workspace.to_string())
            .bind(ts(now))
            .bind("removed")
            .bind("manual_removal")
            .fetch_optional(&self.writer)
            .await?;
        r.as_ref().map(row).transpose()
    }

    async fn agent_move(&self, from: WorkspaceId, to: WorkspaceId) -> Result<AgentMove> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let taken = sqlx::query(sql::ACTIVE)
            .bind(to.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if taken {
            return Ok(AgentMove::TargetTaken);
        }
        let moved = sqlx::query(sql::MOVE)
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(moved) = moved.as_ref().map(row).transpose()? else {
            return Ok(AgentMove::NoSource);
        };
        tx.commit().await?;
        Ok(AgentMove::Moved(moved))
    }
}
