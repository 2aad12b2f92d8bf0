//! The canvas's saved viewport (`canvas_viewport`, one fixed row).

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait CanvasStore: Send + Sync {
    /// The saved viewport, `None` when none was saved.
    async fn viewport_get(&self) -> Result<Option<Viewport>>;

    /// Save the viewport (upsert of the one fixed row).
    async fn viewport_put(&self, v: Viewport, now: DateTime<Utc>) -> Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    pub x: f64,
    pub y: f64,
    pub zoom: f64,
}

/// SQL both backends run as written.
pub(crate) mod sql {
    /// The fixed id of the one viewport row (as the reference).
    pub(crate) const VIEWPORT_ID: &str = "00000000-0000-0000-0000-000000000001";

    pub(crate) const GET: &str =
        "SELECT x, y, zoom FROM canvas_viewport ORDER BY saved_at DESC LIMIT 1";

    pub(crate) const PUT: &str = "INSERT INTO canvas_viewport (id, x, y, zoom, saved_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
         x = excluded.x, y = excluded.y, zoom = excluded.zoom, saved_at = excluded.saved_at";
}
