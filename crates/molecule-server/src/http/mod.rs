//! The HTTP surface: thin axum handlers that extract, call `app`, and
//! convert to wire views. No SQL and no business rules live here.

mod a2a;
mod activity;
mod admin;
mod canvas;
mod channels;
mod content;
pub mod extract;
pub mod host;
pub mod middleware;
mod resources;
mod terminal;
mod webhooks;
mod workspaces;
mod ws;

use resources::{memories, schedules, secrets};
use workspaces::registry;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};

use crate::app::App;

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Every route: the main listener (operators, UIs, the CLI, agents).
    Full,
    /// Only what agents use: the listener containers reach through the
    /// Docker network's gateway, so no container reaches an admin route.
    Agent,
}

/// The router of one listener, with the global middleware.
pub fn router(surface: Surface, global: middleware::Global) -> Router {
    let routes = match surface {
        Surface::Agent => agent_routes(),
        // `merge` panics on a method+path in both halves: every route is in
        // exactly one of them, by decision.
        Surface::Full => agent_routes().merge(admin_routes()),
    };
    let app = global.app.clone();
    routes
        .fallback(fallback)
        .method_not_allowed_fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            global,
            middleware::global,
        ))
        .with_state(app)
}

/// Routes an agent calls about itself and its peers (each still needs the
/// workspace's token where the contract says so): registry, A2A,
/// delegation, activity, memory, approvals and schedules of its workspace,
/// reading its workspace, config, secret values and model, `/ws`, `/health`.
fn agent_routes() -> Router<App> {
    Router::new()
        .route("/health", get(admin::health))
        .route("/ws", get(ws::upgrade))
        .route("/registry/register", post(registry::register))
        .route("/registry/heartbeat", post(registry::heartbeat))
        .route("/registry/update-card", post(registry::update_card))
        .route("/registry/discover/{id}", get(registry::discover))
        .route("/registry/{id}/peers", get(registry::peers))
        .route("/registry/check-access", post(registry::check_access))
        .route("/workspaces/{id}", get(workspaces::get))
        .route("/workspaces/{id}/config", get(schedules::config_get))
        .route("/workspaces/{id}/a2a", post(a2a::proxy))
        .route("/plugins", get(content::plugins::registry))
        .route("/plugins/sources", get(content::plugins::sources))
        .route(
            "/workspaces/{id}/plugins",
            get(content::plugins::installed).post(content::plugins::install),
        )
        .route(
            "/workspaces/{id}/plugins/available",
            get(content::plugins::available),
        )
        .route(
            "/workspaces/{id}/plugins/compatibility",
            get(content::plugins::compatibility),
        )
        .route(
            "/workspaces/{id}/plugins/{name}",
            axum::routing::delete(content::plugins::uninstall),
        )
        .route(
            "/workspaces/{id}/plugins/{name}/download",
            get(content::plugins::download),
        )
        .route("/workspaces/{id}/terminal", get(terminal::upgrade))
        .route("/workspaces/{id}/logs", get(terminal::logs))
        .route("/channels/adapters", get(channels::adapters))
        .route("/channels/discover", post(channels::discover))
        .route(
            "/workspaces/{id}/channels",
            get(channels::list).post(channels::create),
        )
        .route(
            "/workspaces/{id}/channels/{cid}",
            axum::routing::patch(channels::update).delete(channels::delete),
        )
        .route("/workspaces/{id}/channels/{cid}/send", post(channels::send))
        .route("/workspaces/{id}/channels/{cid}/test", post(channels::test))
        .route("/webhooks/{kind}", post(channels::webhook))
        .route("/webhooks/github", post(webhooks::github))
        .route("/webhooks/github/{id}", post(webhooks::github_for))
        .route("/workspaces/{id}/transcript", get(a2a::transcript))
        .route("/workspaces/{id}/traces", get(a2a::traces))
        .route(
            "/workspaces/{id}/a2a/.well-known/agent-card.json",
            get(a2a::card),
        )
        .route(
            "/workspaces/{id}/a2a/.well-known/agent.json",
            get(a2a::card),
        )
        .route(
            "/workspaces/{id}/activity",
            get(activity::list).post(activity::report),
        )
        .route("/workspaces/{id}/notify", post(activity::notify))
        .route(
            "/workspaces/{id}/session-search",
            get(activity::session_search),
        )
        .route("/workspaces/{id}/delegate", post(activity::delegate))
        .route("/workspaces/{id}/delegations", get(activity::delegations))
        .route(
            "/workspaces/{id}/delegations/record",
            post(activity::record_delegation),
        )
        .route(
            "/workspaces/{id}/delegations/{delegation_id}/update",
            post(activity::update_delegation),
        )
        // Schedules are the agent's own (`source: runtime`, WA in the
        // contract); `health` is how peers check on each other.
        .route(
            "/workspaces/{id}/schedules",
            get(schedules::list).post(schedules::create),
        )
        .route("/workspaces/{id}/schedules/health", get(schedules::health))
        .route(
            "/workspaces/{id}/schedules/{sid}",
            axum::routing::patch(schedules::patch).delete(schedules::delete),
        )
        .route("/workspaces/{id}/schedules/{sid}/run", post(schedules::run))
        .route(
            "/workspaces/{id}/schedules/{sid}/history",
            get(schedules::history),
        )
        .route("/workspaces/{id}/secrets/values", get(secrets::values))
        .route("/workspaces/{id}/model", get(secrets::model))
        .route(
            "/workspaces/{id}/memory",
            get(memories::kv_list).post(memories::kv_set),
        )
        .route(
            "/workspaces/{id}/memory/{key}",
            get(memories::kv_get).delete(memories::kv_delete),
        )
        .route(
            "/workspaces/{id}/memories",
            get(memories::search).post(memories::commit),
        )
        .route("/workspaces/{id}/memories/{mid}", delete(memories::delete))
        .route(
            "/workspaces/{id}/approvals",
            get(memories::approval_list).post(memories::approval_create),
        )
        .route(
            "/workspaces/{id}/approvals/{aid}/decide",
            post(memories::approval_decide),
        )
        .route(
            "/workspaces/{id}/shared-context",
            get(content::shared_context),
        )
}

/// Operator routes: the workspace list and lifecycle, settings and
/// secrets, events, metrics, readiness, test tokens, pending approvals.
/// Never served on the agent listener.
fn admin_routes() -> Router<App> {
    Router::new()
        .route("/", get(canvas::index))
        .route("/assets/{*path}", get(canvas::asset))
        .route("/readyz", get(admin::readyz))
        .route("/metrics", get(admin::metrics))
        .route("/admin/liveness", get(admin::liveness))
        .route("/admin/workspaces/{id}/test-token", get(admin::test_token))
        .route("/admin/workspaces/{id}/token", post(admin::rotate_token))
        .route(
            "/workspaces",
            get(workspaces::list).post(workspaces::create),
        )
        .route(
            "/workspaces/{id}",
            axum::routing::patch(workspaces::patch).delete(workspaces::delete),
        )
        .route("/workspaces/{id}/state", get(workspaces::state))
        .route("/workspaces/{id}/restart", post(workspaces::restart))
        .route("/workspaces/{id}/pause", post(workspaces::pause))
        .route("/workspaces/{id}/resume", post(workspaces::resume))
        .route(
            "/workspaces/{id}/config",
            axum::routing::patch(schedules::config_patch),
        )
        .route(
            "/workspaces/{id}/secrets",
            get(secrets::list).post(secrets::set).put(secrets::set),
        )
        .route("/workspaces/{id}/secrets/{key}", delete(secrets::delete))
        .route(
            "/settings/secrets",
            get(secrets::global_list)
                .put(secrets::global_set)
                .post(secrets::global_set),
        )
        .route("/settings/secrets/{key}", delete(secrets::global_delete))
        .route(
            "/admin/secrets",
            get(secrets::global_list).post(secrets::global_set),
        )
        .route("/admin/secrets/{key}", delete(secrets::global_delete))
        .route("/approvals/pending", get(memories::approvals_pending))
        .route("/events", get(admin::events))
        .route("/events/{id}", get(admin::events_for))
        .route(
            "/workspaces/{id}/agent",
            post(content::agent_assign)
                .patch(content::agent_replace)
                .delete(content::agent_remove),
        )
        .route("/workspaces/{id}/agent/move", post(content::agent_move))
        .route(
            "/workspaces/{id}/files",
            get(content::files_list).put(content::files_replace),
        )
        .route("/workspaces/{id}/files/", delete(content::files_clear))
        .route(
            "/workspaces/{id}/files/{*path}",
            get(content::file_read)
                .put(content::file_write)
                .delete(content::file_delete),
        )
        .route("/workspaces/{id}/expand", post(content::expand))
        .route("/workspaces/{id}/collapse", post(content::collapse))
        .route("/bundles/export/{id}", get(content::bundle_export))
        .route("/bundles/import", post(content::bundle_import))
        .route("/org/templates", get(content::org_templates))
        .route("/org/import", post(content::org_import))
        .route("/templates", get(content::templates))
        .route("/templates/import", post(content::template_import))
        .route(
            "/canvas/viewport",
            get(content::viewport_get).put(content::viewport_put),
        )
}

/// Unknown routes: plain-text 404 like the reference; a trailing slash on a
/// path redirects to the slash-less path (308 for GET, 307 otherwise).
/// Never off-host: a target starting `//` or `/\` is a network-path
/// reference to browsers (`GET //evil.example/` would send them to
/// `evil.example`), so such paths get the 404 instead.
async fn fallback(method: axum::http::Method, uri: Uri) -> Response {
    let path = uri.path();
    if path.len() > 1 && path.ends_with('/') && !leaves_host(path) {
        let mut target = path.trim_end_matches('/').to_string();
        if target.is_empty() {
            target.push('/');
        }
        if let Some(q) = uri.query() {
            target = format!("{target}?{q}");
        }
        return if method == axum::http::Method::GET {
            Redirect::permanent(&target).into_response()
        } else {
            Redirect::temporary(&target).into_response()
        };
    }
    not_found().await
}

/// Whether `path` as a `Location` would name another host: browsers read
/// `//host` and `/\host` (backslashes count as slashes) as a host.
fn leaves_host(path: &str) -> bool {
    matches!(path.as_bytes(), [b'/', b'/' | b'\\', ..])
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found",
    )
        .into_response()
}

/// The bare `{"status": …}` acknowledgement.
pub fn ack(status: &str) -> axum::Json<molecule_types::dto::StatusReply> {
    axum::Json(molecule_types::dto::StatusReply {
        status: status.to_string(),
    })
}
