//! Operating through the canvas: signing in to a production platform, the
//! approvals inbox, importing an org, deleting with a confirmation, a
//! workspace's resources, the API's errors, the keyboard and a narrow
//! window.

use molecule_client::Method;
use molecule_types::workspace_data::CreateApproval;
use serde_json::json;
use std::time::Duration;

use super::browser::Browser;
use super::{LOAD, assert_clean_console, assert_console_only, node_named, open, shot};
use crate::{TEST_ADMIN_TOKEN, eventually, start, start_with, write_file};

#[tokio::test]
async fn production_asks_for_the_admin_token_and_keeps_it_for_the_tab_only() {
    let t = start_with(crate::production).await;
    let b = Browser::start(1200, 800).await;
    b.goto(&t.server.url()).await;
    b.wait_for(
        "the sign-in form",
        LOAD,
        "return !document.getElementById('signin').hidden",
    )
    .await;
    b.screenshot(&shot("signin")).await;
    // A wrong token is refused with the API's message.
    b.type_into("#token", "not-the-token").await;
    b.click("#signin-form button[type=submit]").await;
    b.wait_for(
        "the refusal",
        LOAD,
        "return document.getElementById('signin-error').textContent.includes('refused')",
    )
    .await;
    // The right one opens the app, live over /ws with the token.
    b.type_into("#token", TEST_ADMIN_TOKEN).await;
    b.click("#signin-form button[type=submit]").await;
    b.wait_for(
        "the live feed",
        LOAD,
        "return document.getElementById('live').dataset.state === 'live'",
    )
    .await;
    // Live: a workspace created through the API appears.
    let admin = t.client.clone().with_token(Some(TEST_ADMIN_TOKEN.into()));
    admin
        .create_workspace(&molecule_types::dto::CreateWorkspace {
            name: "prod-one".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    b.wait_for(
        "the new node",
        LOAD,
        &format!("return Boolean({})", node_named("prod-one")),
    )
    .await;
    let stored = b
        .eval(
            "return [sessionStorage.getItem('molecule.adminToken'), Object.keys(localStorage).join(',')]",
            json!([]),
        )
        .await;
    assert_eq!(stored[0], TEST_ADMIN_TOKEN, "kept for the tab's session");
    assert!(
        !stored[1].as_str().unwrap().contains("Token"),
        "never in long-lived storage: {stored}"
    );
    // The refused token left its 401s in the console; nothing else did.
    assert_console_only(&b, &["status of 401 (Unauthorized)"]).await;
    b.close().await;
}

#[tokio::test]
async fn an_agents_approval_request_is_decided_in_the_inbox() {
    let t = start().await;
    let id = t.create("asker", None).await;
    let token = t.client.test_token(id).await.unwrap().auth_token;
    let agent = t.as_workspace(id, &token);
    let b = Browser::start(1400, 900).await;
    open(&b, &t.server.url()).await;

    agent
        .request_approval(
            id,
            &CreateApproval {
                action: "deploy to production".into(),
                reason: Some("release 1.2 is green".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.wait_for(
        "the inbox count",
        LOAD,
        "return document.getElementById('approvals-count').textContent === '1'",
    )
    .await;
    b.click("[data-drawer=approvals]").await;
    b.wait_for(
        "the request in the inbox",
        LOAD,
        "return document.getElementById('drawer').textContent.includes('deploy to production')",
    )
    .await;
    b.screenshot(&shot("approvals")).await;
    b.click_text("#drawer button", "Approve").await;
    let decided = eventually(LOAD, || async {
        let list = agent.list_approvals(id).await.ok()?;
        list.into_iter()
            .find(|a| a.status == molecule_types::ApprovalState::Approved)
    })
    .await
    .expect("the decision reached the API");
    assert_eq!(decided.decided_by.as_deref(), Some("canvas"));
    b.wait_for(
        "an empty inbox",
        LOAD,
        "return document.getElementById('drawer').textContent.includes('Nothing waits')",
    )
    .await;
    assert_clean_console(&b).await;
    b.close().await;
}

const ORG: &str = "name: Tiny Org\ndescription: two agents\nworkspaces:\n  - name: lead\n    role: leads\n    children:\n      - name: helper\n        role: helps\n";

#[tokio::test]
async fn import_an_org_work_with_a_workspace_and_delete_it_with_a_confirmation() {
    let t = start().await;
    write_file(
        &t.server.app.config().org_templates_dir(),
        "tiny/org.yaml",
        ORG,
    );
    let b = Browser::start(1400, 900).await;
    open(&b, &t.server.url()).await;

    // Import: both nodes drawn, the helper under the lead.
    b.click("#import").await;
    b.wait_for(
        "the org choice",
        LOAD,
        "return document.getElementById('f-dir')?.value === 'tiny'",
    )
    .await;
    b.click("dialog .modal-form button[type=submit]").await;
    b.wait_for(
        "the imported nodes",
        LOAD,
        &format!(
            "return Boolean({} && {})",
            node_named("lead"),
            node_named("helper")
        ),
    )
    .await;
    let list = t.client.list_workspaces().await.unwrap();
    let lead = list.iter().find(|w| w.name == "lead").unwrap().id;
    let helper = list.iter().find(|w| w.name == "helper").unwrap();
    assert_eq!(helper.parent_id, Some(lead));

    // Drag the lead: its new position is saved through the API.
    let before = t.client.get_workspace(lead).await.unwrap();
    b.drag(&format!(".node[data-id='{lead}'] .node-role"), 160, 120)
        .await;
    let moved = eventually(LOAD, || async {
        let w = t.client.get_workspace(lead).await.ok()?;
        (w.x != before.x || w.y != before.y).then_some(w)
    })
    .await
    .expect("the dragged position saved");
    assert!(
        moved.x > before.x && moved.y > before.y,
        "{:?} -> {:?}",
        (before.x, before.y),
        (moved.x, moved.y)
    );

    // Fold the lead's team: the helper's node goes; unfold: it is back.
    b.click(&format!(".node[data-id='{lead}'] .fold")).await;
    b.wait_for(
        "the helper folded away",
        LOAD,
        &format!("return {}.hidden", node_named("helper")),
    )
    .await;
    b.click(&format!(".node[data-id='{lead}'] .fold")).await;
    b.wait_for(
        "the helper back",
        LOAD,
        &format!("return !{}.hidden", node_named("helper")),
    )
    .await;

    // Zoom with the keyboard: the viewport is saved through the API.
    b.click(&format!(".node[data-id='{lead}']")).await;
    let zoom_before = t
        .client
        .request(Method::GET, "/canvas/viewport", None)
        .await
        .unwrap()
        .json()
        .unwrap()["zoom"]
        .as_f64()
        .unwrap();
    b.keys("++").await;
    let saved = eventually(LOAD, || async {
        let v = t
            .client
            .request(Method::GET, "/canvas/viewport", None)
            .await
            .ok()?
            .json()
            .ok()?;
        let z = v["zoom"].as_f64()?;
        ((z - zoom_before * 1.44).abs() < 0.01).then_some(z)
    })
    .await;
    assert!(
        saved.is_some(),
        "the zoomed viewport was not saved (was {zoom_before})"
    );

    // The keyboard: the chart takes focus, arrows move, Enter opens.
    b.click(&format!(".node[data-id='{lead}']")).await;
    b.keys("\u{E015}\u{E007}").await; // ArrowDown, Enter
    b.wait_for(
        "the helper's panel",
        LOAD,
        "return document.querySelector('#panel h2')?.textContent === 'helper'",
    )
    .await;

    // Secrets by name: the value is never shown after saving.
    b.click("[data-tab=secrets]").await;
    b.click_text("#panel button", "Add secret").await;
    b.type_into("#f-key", "API_KEY").await;
    b.type_into("#f-value", "s3cr3t-value").await;
    b.click("dialog .modal-form button[type=submit]").await;
    b.wait_for(
        "the secret listed",
        LOAD,
        "return document.getElementById('panel').textContent.includes('API_KEY')",
    )
    .await;
    let page = b
        .eval("return document.documentElement.outerHTML", json!([]))
        .await;
    assert!(!page.as_str().unwrap().contains("s3cr3t-value"));

    // An error is the API's own message: only roots write GLOBAL memories.
    b.click("[data-tab=memories]").await;
    b.click_text("#panel button", "Add memory").await;
    b.type_into("#f-content", "the team prefers short answers")
        .await;
    b.eval(
        "const s = document.getElementById('f-scope'); s.value = 'GLOBAL'; s.dispatchEvent(new Event('change'))",
        json!([]),
    )
    .await;
    b.click("dialog .modal-form button[type=submit]").await;
    b.wait_for(
        "the API's refusal in the form",
        LOAD,
        "return document.querySelector('dialog .form-error')?.textContent.includes('only root workspaces can write GLOBAL memories')",
    )
    .await;
    b.eval(
        "document.getElementById('f-scope').value = 'TEAM'",
        json!([]),
    )
    .await;
    b.click("dialog .modal-form button[type=submit]").await;
    b.wait_for(
        "the memory listed",
        LOAD,
        "return document.getElementById('panel').textContent.includes('the team prefers short answers')",
    )
    .await;

    // A schedule: created, run now, listed with its history.
    b.click("[data-tab=schedules]").await;
    b.click_text("#panel button", "New schedule").await;
    b.type_into("#f-name", "standup").await;
    b.type_into("#f-cron_expr", "0 9 * * 1-5").await;
    b.type_into("#f-prompt", "post the standup").await;
    b.click("dialog .modal-form button[type=submit]").await;
    b.click_text("#panel button", "Run now").await;
    b.wait_for(
        "the schedule listed",
        LOAD,
        "return document.getElementById('panel').textContent.includes('0 9 * * 1-5')",
    )
    .await;
    let token = t.client.test_token(helper.id).await.unwrap().auth_token;
    let schedules = t
        .as_workspace(helper.id, &token)
        .request(
            Method::GET,
            &format!("/workspaces/{}/schedules", helper.id),
            None,
        )
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(schedules[0]["name"], "standup");

    // A narrow window: the panel covers the chart and still works.
    b.resize(480, 860).await;
    b.click("[data-tab=details]").await;
    b.screenshot(&shot("narrow")).await;
    b.resize(1400, 900).await;

    // Delete the lead: the confirmation names the cascade; both go.
    b.click(&format!(".node[data-id='{lead}']")).await;
    b.click_text("#panel .actions button", "Delete").await;
    b.wait_for(
        "the confirmation",
        LOAD,
        "return document.querySelector('dialog')?.textContent.includes('everything under it')",
    )
    .await;
    b.click("dialog .modal-form button[type=submit]").await;
    b.wait_for(
        "the nodes gone",
        LOAD,
        "return document.querySelectorAll('.node').length === 0",
    )
    .await;
    let left = eventually(Duration::from_secs(10), || async {
        let l = t.client.list_workspaces().await.ok()?;
        l.is_empty().then_some(())
    })
    .await;
    assert!(left.is_some(), "the API still lists workspaces");
    // The GLOBAL memory refused on purpose is the one failed request.
    assert_console_only(
        &b,
        &["/memories - Failed to load resource: the server responded with a status of 403"],
    )
    .await;
    b.close().await;
}

#[tokio::test]
async fn a_failed_workspace_shows_why_and_is_retried_from_its_panel() {
    use crate::lifecycle::{Backend, start_backend, wait_status};
    // No such image: every provisioning fails, with a reason.
    let t = start_backend(Backend::Docker, |c| {
        c.agent_image = "molecule/no-such-image:0".into()
    })
    .await
    .expect("docker backend");
    let id = t.create("doomed", None).await;
    wait_status(&t.client, id, molecule_types::WorkspaceStatus::Failed, LOAD).await;
    let b = Browser::start(1400, 900).await;
    open(&b, &t.server.url()).await;
    b.click(&format!(".node[data-id='{id}']")).await;
    let why = b
        .wait_for(
            "the status reason",
            LOAD,
            "return document.querySelector(\"#panel [data-fact='Why']\")?.textContent",
        )
        .await;
    assert!(why.as_str().unwrap().contains("no-such-image"), "{why}");
    let failures = || async {
        let events = t.client.events(Some(id)).await.unwrap();
        events
            .iter()
            .filter(|e| e.event_type == "WORKSPACE_PROVISION_FAILED")
            .count()
    };
    let before = failures().await;
    b.click_text("#panel .actions button", "Retry").await;
    let retried = eventually(LOAD, || async { (failures().await > before).then_some(()) }).await;
    assert!(retried.is_some(), "Retry provisioned the workspace again");
    b.wait_for(
        "the node failed again",
        LOAD,
        &format!(
            "return document.querySelector(\".node[data-id='{id}']\").dataset.status === 'failed'"
        ),
    )
    .await;
    assert_clean_console(&b).await;
    b.close().await;
}
