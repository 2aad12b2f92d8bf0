//! The canvas in a real browser (headless chromium through chromedriver),
//! against a real server with real agents: the page loads with no console
//! error, the chart is live from `/ws`, and what an operator does in the
//! page reaches the API. The tests write the screenshots the README shows
//! (`docs/canvas/`).

mod browser;
mod operate;
mod scale;

use browser::Browser;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

use crate::lifecycle::{Backend, start_backend, wait_status};
use molecule_types::WorkspaceStatus;

const LOAD: Duration = Duration::from_secs(20);
const BOOT: Duration = Duration::from_secs(90);

/// Where the screenshots go: `docs/canvas/<name>.png` in the repository.
pub fn shot(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/canvas")
        .join(format!("{name}.png"))
}

/// A JavaScript string literal of `s`.
pub fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The script that finds a node by workspace name.
pub fn node_named(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('.node')].find(n => n.querySelector('.name').textContent === {})",
        js(name)
    )
}

/// Open the canvas and wait until it is live.
pub async fn open(b: &Browser, url: &str) {
    b.goto(url).await;
    b.wait_for(
        "the live feed",
        LOAD,
        "return document.getElementById('live').dataset.state === 'live'",
    )
    .await;
}

/// Nothing the page logged as an error.
pub async fn assert_clean_console(b: &Browser) {
    assert_console_only(b, &[]).await;
}

/// Nothing the page logged as an error but the failed requests a test
/// made on purpose (each names a fragment of its console line).
pub async fn assert_console_only(b: &Browser, expected: &[&str]) {
    let errors: Vec<String> = b
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !expected.iter().any(|x| e.contains(x)))
        // Docker adding a container's network interface on this host makes
        // Chromium abort what is in flight at that moment; the page fetches
        // again what it needs (a module import, a reconnect, a reload).
        .filter(|e| !e.contains("net::ERR_NETWORK_CHANGED"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[tokio::test]
async fn the_page_creates_a_workspace_chats_with_it_and_pauses_it() {
    let t = start_backend(Backend::Local, |_| {})
        .await
        .expect("local backend");
    // The page is served with its policy and no CDN.
    let r = reqwest::get(format!("{}/", t.server.url())).await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(
        !r.text().await.unwrap().contains("http"),
        "the page names no other origin"
    );

    let b = Browser::start(1400, 900).await;
    open(&b, &t.server.url()).await;
    b.wait_for(
        "the empty state",
        LOAD,
        "return !document.getElementById('empty').hidden",
    )
    .await;

    // Create through the form: the node is drawn, then turns online.
    b.click("#new").await;
    b.type_into("#f-name", "scout").await;
    b.type_into("#f-role", "finds things").await;
    b.click("dialog .modal-form button[type=submit]").await;
    let id = b
        .wait_for(
            "the new node",
            LOAD,
            &format!("return {}?.dataset.id", node_named("scout")),
        )
        .await;
    let id: Uuid = id.as_str().unwrap().parse().unwrap();
    wait_status(&t.client, id, WorkspaceStatus::Online, BOOT).await;
    b.wait_for(
        "the node online",
        LOAD,
        &format!(
            "return {}?.dataset.status === 'online'",
            node_named("scout")
        ),
    )
    .await;
    let ws = t.client.get_workspace(id).await.unwrap();
    assert_eq!(ws.role.as_deref(), Some("finds things"));

    // Chat: the streamed answer appears in the panel.
    b.click(&format!(".node[data-id='{id}']")).await;
    b.click("[data-tab=chat]").await;
    b.type_into(".chat-input", "hello canvas").await;
    b.click(".chat-form button[type=submit]").await;
    let answer = b
        .wait_for(
            "the agent's answer",
            LOAD,
            "const m = document.querySelector('.msg.agent:not(.streaming)'); return m && m.textContent",
        )
        .await;
    assert!(
        answer.as_str().unwrap().contains("hello canvas"),
        "answer: {answer}"
    );
    // Streamed: the answer's task went through its states as events.
    let states = b
        .eval(
            "return document.querySelector('.msg-state').textContent",
            json!([]),
        )
        .await;
    let states = states.as_str().unwrap();
    assert!(
        states.contains("working") && states.ends_with("completed"),
        "states shown: {states}"
    );
    b.screenshot(&shot("chat")).await;

    // Pause from the panel: the node shows paused and so does the API.
    b.click("[data-tab=details]").await;
    b.click_text("#panel .actions button", "Pause").await;
    b.wait_for(
        "the node paused",
        LOAD,
        &format!(
            "return document.querySelector(\".node[data-id='{id}']\").dataset.status === 'paused'"
        ),
    )
    .await;
    wait_status(&t.client, id, WorkspaceStatus::Paused, LOAD).await;
    b.screenshot(&shot("details")).await;
    assert_clean_console(&b).await;
    b.close().await;
}

#[tokio::test]
async fn a_killed_container_shows_offline_then_restarting_then_online() {
    let t = start_backend(Backend::Docker, |_| {})
        .await
        .expect("docker backend");
    let id = t.create("sturdy", None).await;
    wait_status(&t.client, id, WorkspaceStatus::Online, BOOT).await;
    let b = Browser::start(1400, 900).await;
    open(&b, &t.server.url()).await;
    let node = format!("document.querySelector(\".node[data-id='{id}']\")");
    b.wait_for(
        "the node online",
        LOAD,
        &format!("return {node}?.dataset.status === 'online'"),
    )
    .await;
    // Every status the node shows from now on, in order.
    b.eval(
        &format!(
            "const n = {node}; window.seen = [];
             new MutationObserver(() => {{
               const s = n.dataset.status;
               if (window.seen[window.seen.length - 1] !== s) window.seen.push(s);
             }}).observe(n, {{attributes: true, attributeFilter: ['data-status']}});"
        ),
        json!([]),
    )
    .await;
    crate::lifecycle::kill_runtime(Backend::Docker, id);
    let seen = b
        .wait_for(
            "offline, restarting, online",
            BOOT,
            "const s = window.seen, o = s.indexOf('offline'), r = s.indexOf('restarting', o), \
             n = s.indexOf('online', r); return o >= 0 && r > o && n > r && s[s.length - 1] === 'online' && s",
        )
        .await;
    println!("statuses shown after the kill: {seen}");

    // The fleet view says why: a restart decision with its reason.
    b.click("[data-drawer=fleet]").await;
    let reason = b
        .wait_for(
            "the restart decision",
            LOAD,
            "const d = document.querySelector('#drawer .decision.restart'); \
             return d && d.closest('tr').textContent",
        )
        .await;
    assert!(reason.as_str().unwrap().contains("sturdy"), "{reason}");
    assert_eq!(
        b.eval(
            "return document.querySelector('#drawer [data-breaker]').dataset.breaker",
            json!([])
        )
        .await,
        "closed"
    );
    b.screenshot(&shot("fleet")).await;
    assert_clean_console(&b).await;
    b.close().await;
}

#[tokio::test]
async fn the_assets_are_embedded_revalidated_and_nothing_else_is_served() {
    let t = crate::start().await;
    let url = t.server.url();
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{url}{path}")).send();
    let r = get("/assets/js/main.js").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let etag = r.headers()["etag"].clone();
    assert!(r.text().await.unwrap().contains("connect("));
    // A browser's revalidation: 304, no body.
    let again = http
        .get(format!("{url}/assets/js/main.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    // Only what is embedded: no files from disk, no traversal, and the
    // page only at `/`.
    for path in [
        "/assets/js/nope.js",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/js/%2e%2e/%2e%2e/src/main.rs",
        "/assets/index.html",
        "/assets/",
        "/assets/tsconfig.json",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let css = get("/assets/app.css").await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}
