//! 500 workspaces: the first render of the whole chart, measured in the
//! browser (navigation start to the page's `molecule:first-render` mark),
//! and how fast the page answers afterwards: a search over every node and a
//! status event reaching its node.

use futures_util::StreamExt;
use molecule_types::dto::CreateWorkspace;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

use super::browser::Browser;
use super::{LOAD, assert_clean_console, shot};
use crate::start;

/// 5 roots, 9 teams under each, 10 members under each team: 500.
async fn org_of_500(t: &crate::TestServer) -> Vec<Uuid> {
    let create = |name: String, parent: Option<Uuid>| {
        let c = t.client.clone();
        async move {
            c.create_workspace(&CreateWorkspace {
                name,
                role: Some("member".into()),
                parent_id: parent,
                ..Default::default()
            })
            .await
            .unwrap()
            .id
        }
    };
    let mut all = Vec::new();
    for r in 0..5 {
        let root = create(format!("org-{r}"), None).await;
        all.push(root);
        let teams: Vec<Uuid> = futures_util::stream::iter(0..9)
            .map(|i| create(format!("team-{r}-{i}"), Some(root)))
            .buffered(8)
            .collect()
            .await;
        all.extend(&teams);
        let members: Vec<(usize, usize)> =
            (0..9).flat_map(|i| (0..10).map(move |j| (i, j))).collect();
        let ids: Vec<Uuid> = futures_util::stream::iter(members)
            .map(|(i, j)| create(format!("agent-{r}-{i}-{j}"), Some(teams[i])))
            .buffered(8)
            .collect()
            .await;
        all.extend(ids);
    }
    all
}

// The server gets both cores, as `molecule serve` has them (a
// current-thread test runtime would serve the page's requests one by one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_workspaces_render_within_a_second_and_stay_responsive() {
    let t = start().await;
    let all = org_of_500(&t).await;
    assert_eq!(all.len(), 500);
    let b = Browser::start(1600, 1000).await;
    // Every load is a cold one: no cached module, stylesheet or answer.
    b.cdp("Network.enable", json!({})).await;
    b.cdp("Network.setCacheDisabled", json!({ "cacheDisabled": true }))
        .await;
    // Three loads, judged by their median: one stall of this shared 2-core
    // machine neither fails the test nor hides a page that got slow.
    let mut loads = Vec::new();
    for _ in 0..3 {
        b.goto(&t.server.url()).await;
        let first = b
            .wait_for(
                "the first render",
                LOAD,
                "const m = performance.getEntriesByName('molecule:first-render')[0]; \
                 return m && {at: m.startTime, workspaces: m.detail.workspaces, \
                   nodes: document.querySelectorAll('.node').length, \
                   script: performance.getEntriesByName('molecule:render')[0].duration, \
                   fetch: performance.getEntriesByType('resource') \
                     .filter(e => e.name.endsWith('/workspaces')) \
                     .map(e => e.responseEnd - e.startTime)[0]}",
            )
            .await;
        assert_eq!(first["workspaces"], 500);
        assert_eq!(first["nodes"], 500);
        // The baseline in the same load: fetching the list the chart draws.
        let at = first["at"].as_f64().unwrap();
        let fetch = first["fetch"].as_f64().unwrap();
        println!(
            "first render of 500 workspaces: {at:.0} ms after navigation start \
             ({:.1}× the {fetch:.0} ms GET /workspaces takes; script {:.0} ms)",
            at / fetch.max(1.0),
            first["script"].as_f64().unwrap()
        );
        loads.push(at);
    }
    loads.sort_by(f64::total_cmp);
    let median = loads[1];
    assert!(
        median < 1000.0,
        "first render: median {median:.0} ms of {loads:?} (target < 1 s)"
    );
    b.wait_for(
        "the live feed",
        LOAD,
        "return document.getElementById('live').dataset.state === 'live'",
    )
    .await;
    b.screenshot(&shot("org-500")).await;

    // A search over every node, to the next frame.
    let search = b
        .eval_async(
            "const done = arguments[arguments.length - 1]; const s = document.getElementById('search'); \
             const t0 = performance.now(); s.value = 'agent-3-4'; s.dispatchEvent(new Event('input')); \
             requestAnimationFrame(() => done({ms: performance.now() - t0, \
               hits: document.querySelectorAll('.node.match').length}));",
        )
        .await;
    println!("search over 500 nodes: {search}");
    assert_eq!(search["hits"], 10);
    assert!(search["ms"].as_f64().unwrap() < 200.0, "{search}");

    // Enter selects the first match and centres it; `+` zooms in on it.
    b.click("#search").await;
    b.keys("\u{E007}").await;
    b.wait_for(
        "the match selected",
        LOAD,
        "return document.querySelector('#panel h2')?.textContent.startsWith('agent-3-4-')",
    )
    .await;
    b.keys("\u{E00C}").await; // Escape: the panel closes, the selection stays
    b.click(".node.selected").await;
    b.keys(&"+".repeat(16)).await;
    b.keys("\u{E00C}").await;
    b.screenshot(&shot("org-500-zoomed")).await;

    // A status event reaches its node: the event's time (the server's
    // clock) to the node's change (the browser's; one machine, one clock).
    let id = all[499];
    b.eval(
        &format!(
            "const n = document.querySelector(\".node[data-id='{id}']\"); window.changed = null; \
             new MutationObserver(() => {{ if (n.dataset.status === 'paused' && !window.changed) window.changed = Date.now(); }}) \
               .observe(n, {{attributes: true, attributeFilter: ['data-status']}});"
        ),
        json!([]),
    )
    .await;
    let token = t.client.test_token(id).await.unwrap().auth_token;
    t.as_workspace(id, &token)
        .request(
            molecule_client::Method::POST,
            &format!("/workspaces/{id}/pause"),
            None,
        )
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let changed = b
        .wait_for("the paused node", LOAD, "return window.changed")
        .await
        .as_f64()
        .unwrap();
    let event = crate::eventually(Duration::from_secs(10), || async {
        let events = t.client.events(Some(id)).await.ok()?;
        events
            .into_iter()
            .find(|e| e.event_type == "WORKSPACE_PAUSED")
    })
    .await
    .expect("the pause event");
    let emitted = event.created_at.timestamp_millis() as f64;
    let latency = changed - emitted;
    println!("event to node: {latency:.0} ms");
    assert!(
        latency < 200.0,
        "the node changed {latency:.0} ms after its event (target < 200 ms)"
    );
    assert_clean_console(&b).await;
    b.close().await;
}
