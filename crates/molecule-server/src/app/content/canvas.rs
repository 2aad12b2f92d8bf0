//! The canvas viewport (api-contract §5.18): where the operator's org chart
//! was last looked at. One row for the whole platform.

use molecule_store::Viewport;
use molecule_types::content::ViewportView;

use crate::app::App;
use crate::app::auth::AdminAccess;
use crate::error::{AppError, AppResult};

/// Largest coordinate accepted (the canvas never gets near it; it keeps
/// NaN-adjacent and absurd values out of the table).
const COORD_MAX: f64 = 1e9;

impl App {
    /// `GET /canvas/viewport`: the saved viewport, `{0, 0, 1}` when none
    /// was saved or it cannot be read (the canvas must always open).
    pub async fn viewport_get(&self, _: AdminAccess) -> ViewportView {
        match self.store.viewport_get().await {
            Ok(Some(v)) => ViewportView {
                x: v.x,
                y: v.y,
                zoom: v.zoom,
            },
            Ok(None) => ViewportView::default(),
            Err(e) => {
                tracing::warn!(error = %e, "viewport read failed; answering the default");
                ViewportView::default()
            }
        }
    }

    /// `PUT /canvas/viewport`.
    pub async fn viewport_put(&self, _: AdminAccess, v: ViewportView) -> AppResult<()> {
        for (name, value) in [("x", v.x), ("y", v.y)] {
            if !value.is_finite() || value.abs() > COORD_MAX {
                return Err(AppError::invalid(format!(
                    "{name} must be a finite number of at most {COORD_MAX:e} in size"
                )));
            }
        }
        if !v.zoom.is_finite() || v.zoom <= 0.0 || v.zoom > 1000.0 {
            return Err(AppError::invalid(
                "zoom must be a number greater than 0 and at most 1000",
            ));
        }
        self.store
            .viewport_put(
                Viewport {
                    x: v.x,
                    y: v.y,
                    zoom: v.zoom,
                },
                self.now(),
            )
            .await
            .map_err(AppError::internal("failed to save viewport"))
    }
}
