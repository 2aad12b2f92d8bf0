//! The canvas: the operator's web UI, served from the binary itself. Its
//! files (`crates/molecule-server/web/`) are embedded at build time, so
//! `molecule serve` alone gives a browser the whole app at `/` and its
//! assets under `/assets/`; nothing is read from disk or fetched from
//! anywhere else at run time. The page runs under a strict
//! Content-Security-Policy: scripts, styles and connections to this origin
//! only, no inline script or style, no frames.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The policy of every canvas response. `connect-src 'self'` covers the
/// same-origin `ws:`/`wss:` of `/ws` (CSP Level 3).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its path under `/assets/` (the page is `index.html`),
/// its media type and its text.
struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static str,
}

macro_rules! assets {
    ($($path:literal => $mime:expr),* $(,)?) => {
        &[$(Asset { path: $path, mime: $mime, body: include_str!(concat!("../../web/", $path)) }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";
static ASSETS: &[Asset] = assets![
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "js/api.js" => JS,
    "js/chart.js" => JS,
    "js/chat.js" => JS,
    "js/dialogs.js" => JS,
    "js/live.js" => JS,
    "js/main.js" => JS,
    "js/ops.js" => JS,
    "js/panel.js" => JS,
    "js/store.js" => JS,
    "js/tabs.js" => JS,
    "js/util.js" => JS,
];

/// `GET /`: the app.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /assets/*path`.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path == "index.html" {
        return not_found();
    }
    serve(&path, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((i, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.path == path) else {
        return not_found();
    };
    let etag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let common = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        // Revalidated on every load (cheap: a 304), so an upgraded binary
        // never runs against yesterday's scripts.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::ETAG,
            HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\"")),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime))],
        asset.body,
    )
        .into_response()
}

/// One strong ETag per asset, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body.as_bytes());
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        // A module missing from ASSETS would only show in a browser; catch
        // it here: every `from './x.js'` of every embedded script resolves.
        for a in ASSETS.iter().filter(|a| a.mime == JS) {
            for line in a.body.lines() {
                let Some(rest) = line.split(" from './").nth(1) else {
                    continue;
                };
                let name = rest.split('\'').next().unwrap_or_default();
                let want = format!("js/{name}");
                assert!(
                    ASSETS.iter().any(|b| b.path == want),
                    "{} imports {want}, which is not embedded",
                    a.path
                );
            }
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/js");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            assert!(
                ASSETS.iter().any(|a| a.path == format!("js/{name}")),
                "web/js/{name} is not embedded"
            );
        }
    }

    #[test]
    fn etags_differ_per_asset() {
        let tags = etags();
        assert_eq!(tags.len(), ASSETS.len());
        let unique: std::collections::HashSet<_> = tags.iter().collect();
        assert_eq!(unique.len(), tags.len());
    }
}
