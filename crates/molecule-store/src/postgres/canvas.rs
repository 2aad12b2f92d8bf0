//! `canvas_viewport` on PostgreSQL.

use super::PostgresStore;
use crate::{CanvasStore, Result, StoreError, Viewport, canvas::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

#[async_trait]
impl CanvasStore for PostgresStore {
    async fn viewport_get(&self) -> Result<Option<Viewport>> {
        let r = sqlx::query(sql::GET).fetch_optional(&self.pool).await?;
        r.map(|r| {
            Ok(Viewport {
                x: r.try_get("x")?,
                y: r.try_get("y")?,
                zoom: r.try_get("zoom")?,
            })
        })
        .transpose()
    }

    async fn viewport_put(&self, v: Viewport, now: DateTime<Utc>) -> Result<()> {
        let id: Uuid = sql::VIEWPORT_ID
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("viewport id: {e}")))?;
        sqlx::query(sql::PUT)
            .bind(id)
            .bind(v.x)
            .bind(v.y)
            .bind(v.zoom)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
