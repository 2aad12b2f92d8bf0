//! Decoding PostgreSQL rows into [`crate::rows`] types. Columns are native
//! (`uuid`, `timestamptz`, `jsonb`), so only the status string needs mapping.

use crate::{Result, WorkspaceRow};
use sqlx::Row;
use sqlx::postgres::PgRow;

/// The columns every workspace read returns, joined with the canvas layout.
/// A macro (not a `const`) so queries can `concat!` it into a `&'static str`.
macro_rules! select_workspace {
    () => {
        "SELECT w.id, w.name, w.role, COALESCE(w.tier, 1) AS tier, w.status, w.status_reason, \
         w.source_bundle_id, w.agent_card, w.a2a_conformance, w.url, w.parent_id, w.last_heartbeat_at, \
         COALESCE(w.last_error_rate, 0) AS last_error_rate, w.last_sample_error, \
         COALESCE(w.active_tasks, 0) AS active_tasks, \
         COALESCE(w.uptime_seconds, 0) AS uptime_seconds, w.current_task, \
         w.awareness_namespace, COALESCE(w.runtime, 'langgraph') AS runtime, w.workspace_dir, \
         w.workspace_access, w.created_at, w.updated_at, \
         COALESCE(cl.x, 0) AS x, COALESCE(cl.y, 0) AS y, \
         COALESCE(cl.collapsed, false) AS collapsed \
         FROM workspaces w LEFT JOIN canvas_layouts cl ON cl.workspace_id = w.id "
    };
}
pub(super) use select_workspace;

pub(super) fn workspace_row(r: &PgRow) -> Result<WorkspaceRow> {
    Ok(WorkspaceRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        tier: r.try_get("tier")?,
        status: crate::word(r.try_get::<&str, _>("status")?)?,
        status_reason: r.try_get("status_reason")?,
        source_bundle_id: r.try_get("source_bundle_id")?,
        agent_card: r.try_get("agent_card")?,
        a2a_conformance: r.try_get("a2a_conformance")?,
        url: r.try_get("url")?,
        parent_id: r.try_get("parent_id")?,
        last_heartbeat_at: r.try_get("last_heartbeat_at")?,
        last_error_rate: r.try_get("last_error_rate")?,
        last_sample_error: r.try_get("last_sample_error")?,
        active_tasks: r.try_get("active_tasks")?,
        uptime_seconds: r.try_get("uptime_seconds")?,
        current_task: r.try_get("current_task")?,
        awareness_namespace: r.try_get("awareness_namespace")?,
        runtime: r.try_get::<String, _>("runtime")?.into(),
        workspace_dir: r.try_get("workspace_dir")?,
        workspace_access: r.try_get("workspace_access")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        x: r.try_get("x")?,
        y: r.try_get("y")?,
        collapsed: r.try_get("collapsed")?,
    })
}

pub(super) fn workspace_rows(rows: &[PgRow]) -> Result<Vec<WorkspaceRow>> {
    rows.iter().map(workspace_row).collect()
}
