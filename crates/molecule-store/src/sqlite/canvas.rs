//! `canvas_viewport` on SQLite.

use super::SqliteStore;
use super::codec::ts;
use crate::{CanvasStore, Result, Viewport, canvas::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

#[async_trait]
impl CanvasStore for SqliteStore {
    async fn viewport_get(&self) -> Result<Option<Viewport>> {
        let r = sqlx::query(sql::GET).fetch_optional(&self.reader).await?;
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
        sqlx::query(sql::PUT)
            .bind(sql::VIEWPORT_ID)
            .bind(v.x)
            .bind(v.y)
            .bind(v.zoom)
            .bind(ts(now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
