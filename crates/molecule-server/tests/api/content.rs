//! Org content through the API (api-contract §5.12–5.14, §5.18): agent
//! records, the canvas viewport, templates, files of a workspace that has
//! not started yet (its seed) and of a running local one, shared context,
//! team expand/collapse, and path traversal on every route that takes a
//! path.

use crate::lifecycle::{Backend, start_backend, wait_status};
use crate::{TestServer, call, production, start, start_with, store_of, write_file};
use molecule_client::{Client, Method};
use molecule_types::WorkspaceStatus;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

async fn workspace(t: &TestServer, name: &str) -> (Uuid, Client) {
    let id = t.create(name, None).await;
    let token = t.register(id).await;
    (id, t.as_workspace(id, &token))
}

#[tokio::test]
async fn agents_are_assigned_replaced_moved_and_removed() {
    let t = start().await;
    let (a, ca) = workspace(&t, "a").await;
    let (b, cb) = workspace(&t, "b").await;
    let path = format!("/workspaces/{a}/agent");
    let (s, e) = call(&ca, Method::POST, &path, Some(json!({}))).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("model is required")));
    let (s, assigned) = call(&ca, Method::POST, &path, Some(json!({"model": "m1"}))).await;
    assert_eq!((s, assigned["model"].as_str()), (201, Some("m1")));
    let (s, e) = call(&ca, Method::POST, &path, Some(json!({"model": "m2"}))).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (
            409,
            Some("workspace already has an active agent, use PATCH to replace")
        )
    );
    let (s, replaced) = call(&ca, Method::PATCH, &path, Some(json!({"model": "m2"}))).await;
    assert_eq!(s, 200);
    assert_eq!(
        (replaced["model"].as_str(), replaced["old_model"].as_str()),
        (Some("m2"), Some("m1"))
    );
    assert_ne!(replaced["agent_id"], assigned["agent_id"]);

    let mv = format!("/workspaces/{a}/agent/move");
    let (s, e) = call(
        &ca,
        Method::POST,
        &mv,
        Some(json!({"target_workspace_id": Uuid::new_v4()})),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (404, Some("target workspace not found"))
    );
    let (s, moved) = call(
        &ca,
        Method::POST,
        &mv,
        Some(json!({"target_workspace_id": b})),
    )
    .await;
    assert_eq!(s, 200, "{moved}");
    assert_eq!(
        (
            moved["from_workspace"].clone(),
            moved["to_workspace"].clone()
        ),
        (json!(a), json!(b))
    );
    let (s, e) = call(
        &ca,
        Method::POST,
        &mv,
        Some(json!({"target_workspace_id": b})),
    )
    .await;
    assert_eq!(s, 409, "{e}");
    let (s, _) = call(&ca, Method::POST, &path, Some(json!({"model": "m3"}))).await;
    assert_eq!(s, 201);
    let (s, e) = call(
        &cb,
        Method::POST,
        &format!("/workspaces/{b}/agent/move"),
        Some(json!({"target_workspace_id": a})),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (409, Some("target workspace already has an active agent"))
    );
    let (s, removed) = call(&ca, Method::DELETE, &path, None).await;
    assert_eq!((s, removed["status"].as_str()), (200, Some("removed")));
    let (s, e) = call(&ca, Method::DELETE, &path, None).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (404, Some("no active agent to remove"))
    );
    let (s, e) = call(
        &ca,
        Method::POST,
        &mv,
        Some(json!({"target_workspace_id": b})),
    )
    .await;
    assert_eq!(s, 409, "b still has the moved agent: {e}");

    let events = t.client.events(Some(b)).await.unwrap();
    let moved_in = events
        .iter()
        .find(|e| e.event_type == "AGENT_MOVED")
        .expect("AGENT_MOVED on the target");
    assert_eq!(moved_in.payload["source_workspace_id"], json!(a));
    let kinds: Vec<String> = t
        .client
        .events(Some(a))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .filter(|k| k.starts_with("AGENT_") && k != "AGENT_CARD_UPDATED")
        .rev()
        .collect();
    assert_eq!(
        kinds,
        [
            "AGENT_ASSIGNED",
            "AGENT_REPLACED",
            "AGENT_MOVED",
            "AGENT_ASSIGNED",
            "AGENT_REMOVED"
        ]
    );
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_assigns_leave_one_active_agent() {
    let t = start().await;
    let (a, ca) = workspace(&t, "a").await;
    let path = format!("/workspaces/{a}/agent");
    let calls = (0..8).map(|i| {
        let (c, path) = (ca.clone(), path.clone());
        async move {
            call(
                &c,
                Method::POST,
                &path,
                Some(json!({"model": format!("m{i}")})),
            )
            .await
            .0
        }
    });
    let mut codes = futures_util::future::join_all(calls).await;
    codes.sort();
    assert_eq!(codes, [201, 409, 409, 409, 409, 409, 409, 409]);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_viewport_round_trips_and_refuses_nonsense() {
    let t = start().await;
    let (s, v) = call(&t.client, Method::GET, "/canvas/viewport", None).await;
    assert_eq!((s, v), (200, json!({"x": 0.0, "y": 0.0, "zoom": 1.0})));
    let (s, r) = call(
        &t.client,
        Method::PUT,
        "/canvas/viewport",
        Some(json!({"x": -12.5, "y": 40})),
    )
    .await;
    assert_eq!((s, r), (200, json!({"status": "saved"})));
    let (_, v) = call(&t.client, Method::GET, "/canvas/viewport", None).await;
    assert_eq!(v, json!({"x": -12.5, "y": 40.0, "zoom": 1.0}));
    for bad in [
        json!({"zoom": 0}),
        json!({"zoom": -1}),
        json!({"x": 1e300}),
        json!({"x": "left"}),
    ] {
        let (s, _) = call(
            &t.client,
            Method::PUT,
            "/canvas/viewport",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, 400, "{bad}");
    }
    let (_, v) = call(&t.client, Method::GET, "/canvas/viewport", None).await;
    assert_eq!(v["x"], -12.5, "a refused PUT changed nothing");
    t.server.shutdown().await.unwrap();

    let t = start_with(production).await;
    for (method, body) in [(Method::GET, None), (Method::PUT, Some(json!({"x": 1})))] {
        let (s, _) = call(&t.client, method.clone(), "/canvas/viewport", body.clone()).await;
        assert_eq!(s, 401, "{method:?} without the admin token");
        let (s, _) = call(&t.admin(), method, "/canvas/viewport", body).await;
        assert_eq!(s, 200);
    }
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn templates_import_list_and_seed_new_workspaces() {
    let t = start().await;
    let (s, list) = call(&t.client, Method::GET, "/templates", None).await;
    assert_eq!((s, list), (200, json!([])), "no templates directory yet");
    let files = json!({
        "system-prompt.md": "You research.",
        "skills/search/SKILL.md": "---\nname: search\n---\nFinds things.",
    });
    let (s, imported) = call(
        &t.client,
        Method::POST,
        "/templates/import",
        Some(json!({"name": "Deep Researcher", "files": files})),
    )
    .await;
    assert_eq!(
        (s, imported.clone()),
        (
            201,
            json!({"status": "imported", "id": "deep-researcher", "name": "Deep Researcher"})
        )
    );
    let (s, e) = call(
        &t.client,
        Method::POST,
        "/templates/import",
        Some(json!({"name": "deep researcher", "files": files})),
    )
    .await;
    assert_eq!(
        (s, e),
        (
            409,
            json!({"error": "template already exists", "id": "deep-researcher"})
        )
    );
    let dir = t
        .server
        .app
        .config()
        .templates_dir()
        .join("deep-researcher");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("system-prompt.md"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let (_, list) = call(&t.client, Method::GET, "/templates", None).await;
    assert_eq!(list[0]["id"], "deep-researcher");
    assert_eq!(list[0]["name"], "Deep Researcher");
    assert_eq!(
        (list[0]["skills"].clone(), list[0]["skill_count"].clone()),
        (json!(["search"]), json!(1))
    );

    // A workspace made from it starts with a copy of its files.
    let (s, created) = call(
        &t.client,
        Method::POST,
        "/workspaces",
        Some(json!({"name": "r1", "template": "deep-researcher", "model": "openai:gpt-4o"})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let id: Uuid = serde_json::from_value(created["id"].clone()).unwrap();
    let token = t.register(id).await;
    let c = t.as_workspace(id, &token);
    let (s, entries) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{id}/files?depth=3"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let paths: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "config.yaml",
            "skills",
            "skills/search",
            "skills/search/SKILL.md",
            "system-prompt.md"
        ]
    );
    let (s, file) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{id}/files/config.yaml"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let config = file["content"].as_str().unwrap();
    assert!(config.contains("model: \"openai:gpt-4o\""), "{config}");
    assert!(
        config.contains("name: \"Deep Researcher\""),
        "the template's own config: {config}"
    );
    // Template edits after creation do not reach it.
    std::fs::write(dir.join("system-prompt.md"), "changed").unwrap();
    let (_, file) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{id}/files/system-prompt.md"),
        None,
    )
    .await;
    assert_eq!(file["content"], "You research.");

    // Without a template: a generated config.
    let (plain, c) = workspace(&t, "plain one").await;
    let (_, file) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{plain}/files/config.yaml"),
        None,
    )
    .await;
    assert!(
        file["content"]
            .as_str()
            .unwrap()
            .contains("name: \"plain one\""),
        "{file}"
    );

    let (s, e) = call(
        &t.client,
        Method::POST,
        "/workspaces",
        Some(json!({"name": "x", "template": "../etc"})),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid template")));
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn template_imports_check_every_path_and_cap() {
    let t = start().await;
    let outside = t.server.app.config().data_dir.join("escaped.txt");
    for bad in [
        "../escaped.txt",
        "/etc/passwd",
        "a/../../escaped.txt",
        "a\\..\\b",
    ] {
        let (s, e) = call(
            &t.client,
            Method::POST,
            "/templates/import",
            Some(json!({"name": "evil", "files": {bad: "x"}})),
        )
        .await;
        assert_eq!(s, 400, "{bad}: {e}");
    }
    assert!(!outside.exists());
    assert!(
        !t.server.app.config().templates_dir().join("evil").exists(),
        "nothing written"
    );
    let many: serde_json::Map<String, Value> =
        (0..201).map(|i| (format!("f{i}.md"), json!("x"))).collect();
    let (s, e) = call(
        &t.client,
        Method::POST,
        "/templates/import",
        Some(json!({"name": "big", "files": many})),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("too many files (limit 200)"))
    );
    let (s, _) = call(
        &t.client,
        Method::POST,
        "/templates/import",
        Some(json!({"name": "", "files": {"a": "b"}})),
    )
    .await;
    assert_eq!(s, 400);
    t.server.shutdown().await.unwrap();

    let t = start_with(production).await;
    let (s, _) = call(
        &t.client,
        Method::POST,
        "/templates/import",
        Some(json!({"name": "x", "files": {"a": "b"}})),
    )
    .await;
    assert_eq!(s, 401);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn files_of_a_workspace_not_started_are_its_seed() {
    let t = start().await;
    let (id, c) = workspace(&t, "w").await;
    let base = format!("/workspaces/{id}/files");
    let (s, r) = call(
        &c,
        Method::PUT,
        &format!("{base}/prompts/a.md"),
        Some(json!({"content": "alpha"})),
    )
    .await;
    assert_eq!(
        (s, r),
        (200, json!({"status": "saved", "path": "prompts/a.md"}))
    );
    let (s, r) = call(
        &c,
        Method::PUT,
        &base,
        Some(json!({"files": {"prompts/b.md": "beta", "notes.txt": "n"}})),
    )
    .await;
    assert_eq!(
        (
            s,
            r["status"].as_str(),
            r["files"].as_u64(),
            r["source"].as_str()
        ),
        (200, Some("replaced"), Some(2), Some("seed"))
    );
    let (_, list) = call(&c, Method::GET, &format!("{base}?path=prompts"), None).await;
    assert_eq!(
        list,
        json!([{"path": "a.md", "size": 5, "dir": false}, {"path": "b.md", "size": 4, "dir": false}])
    );
    let (s, r) = call(&c, Method::DELETE, &format!("{base}/prompts"), None).await;
    assert_eq!(
        (s, r),
        (200, json!({"status": "deleted", "path": "prompts"}))
    );
    let (s, e) = call(&c, Method::GET, &format!("{base}/prompts/a.md"), None).await;
    assert_eq!((s, e["error"].as_str()), (404, Some("file not found")));
    let (_, list) = call(&c, Method::GET, &base, None).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["config.yaml", "notes.txt"]);

    for (q, want) in [
        ("?depth=0", 400),
        ("?depth=6", 400),
        ("?depth=x", 400),
        ("?root=/etc", 400),
        ("?root=/home", 200),
    ] {
        let (s, _) = call(&c, Method::GET, &format!("{base}{q}"), None).await;
        assert_eq!(s, want, "{q}");
    }
    // Traversal on every path-taking files route, spelled so no HTTP layer
    // normalises it away first.
    for path in [
        "..%2F..%2Fetc%2Fpasswd",
        "a%2F..%2F..%2Fb",
        "%2Fetc%2Fpasswd",
        "a%5C..%5Cb",
    ] {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let body = (method == Method::PUT).then(|| json!({"content": "x"}));
            let (s, e) = call(&c, method.clone(), &format!("{base}/{path}"), body).await;
            assert_eq!(s, 400, "{method:?} {path}: {e}");
        }
    }
    let (s, _) = call(&c, Method::GET, &format!("{base}?path=..%2F.."), None).await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &c,
        Method::PUT,
        &base,
        Some(json!({"files": {"ok.txt": "x", "../bad": "y"}})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(&c, Method::GET, &format!("{base}/ok.txt"), None).await;
    assert_eq!(s, 404, "a batch with a bad path writes nothing");
    // Another workspace's token cannot read these files.
    let (_, other) = workspace(&t, "other").await;
    let (s, _) = call(&other, Method::GET, &base, None).await;
    assert_eq!(s, 401);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shared_context_reads_the_files_config_names() {
    let t = start().await;
    let (id, c) = workspace(&t, "lead").await;
    let base = format!("/workspaces/{id}/files");
    let config =
        "name: lead\nshared_context:\n  - docs/brief.md\n  - missing.md\n  - ../../etc/passwd\n";
    call(
        &c,
        Method::PUT,
        &base,
        Some(json!({"files": {"config.yaml": config, "docs/brief.md": "the brief"}})),
    )
    .await;
    let (s, shared) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{id}/shared-context"),
        None,
    )
    .await;
    assert_eq!(
        (s, shared),
        (
            200,
            json!([{"path": "docs/brief.md", "content": "the brief"}])
        )
    );
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn expand_creates_the_team_and_collapse_removes_the_whole_subtree() {
    let t = start().await;
    let root = t.server.app.config().templates_dir();
    write_file(
        &root,
        "squad/config.yaml",
        "name: Squad\nsub_workspaces:\n  - {config: scout, name: Scout, role: scouting}\n  - {config: medic}\n",
    );
    write_file(
        &root,
        "scout/config.yaml",
        "name: Scout\nsub_workspaces:\n  - {config: medic, name: Field Medic}\n",
    );
    write_file(&root, "scout/system-prompt.md", "Look around.");
    let (lead, lead_c) = workspace(&t, "Squad").await;
    let (s, expanded) = call(
        &lead_c,
        Method::POST,
        &format!("/workspaces/{lead}/expand"),
        None,
    )
    .await;
    assert_eq!(
        (s, expanded["status"].as_str()),
        (200, Some("expanded")),
        "{expanded}"
    );
    let kids = expanded["children"].as_array().unwrap();
    assert_eq!(kids.len(), 2);
    assert_eq!(
        (kids[0]["name"].as_str(), kids[0]["role"].as_str()),
        (Some("Scout"), Some("scouting"))
    );
    assert_eq!(kids[1]["name"], "medic", "name defaults to the config");
    let scout: Uuid = serde_json::from_value(kids[0]["id"].clone()).unwrap();
    let ws = t.client.get_workspace(scout).await.unwrap();
    assert_eq!(ws.parent_id, Some(lead));
    let token = t.register(scout).await;
    let scout_c = t.as_workspace(scout, &token);
    let (_, prompt) = call(
        &scout_c,
        Method::GET,
        &format!("/workspaces/{scout}/files/system-prompt.md"),
        None,
    )
    .await;
    assert_eq!(
        prompt["content"], "Look around.",
        "seeded from its template"
    );

    // The scout grows its own team: three levels.
    let (s, _) = call(
        &scout_c,
        Method::POST,
        &format!("/workspaces/{scout}/expand"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, collapsed) = call(
        &lead_c,
        Method::POST,
        &format!("/workspaces/{lead}/collapse"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let mut removed: Vec<String> = serde_json::from_value(collapsed["removed"].clone()).unwrap();
    removed.sort();
    assert_eq!(removed, ["Field Medic", "Scout", "medic"]);
    let store = store_of(&t.server).await;
    for row in store.workspace_list().await.unwrap() {
        assert!(
            row.id == lead || row.status == WorkspaceStatus::Removed,
            "{} left",
            row.name
        );
    }
    let (s, _) = call(
        &t.as_workspace(scout, &token),
        Method::GET,
        &format!("/workspaces/{scout}/files"),
        None,
    )
    .await;
    assert_eq!(s, 401, "the collapsed workspace's token is revoked");
    let events = t.client.events(Some(lead)).await.unwrap();
    assert!(events.iter().any(|e| e.event_type == "WORKSPACE_COLLAPSED"));

    let (nobody, nobody_c) = workspace(&t, "nobody").await;
    let (s, e) = call(
        &nobody_c,
        Method::POST,
        &format!("/workspaces/{nobody}/expand"),
        None,
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("no config found for workspace"))
    );
    write_file(
        &root,
        "evil/config.yaml",
        "name: Evil\nsub_workspaces:\n  - {config: ../../outside}\n",
    );
    let (evil, evil_c) = workspace(&t, "Evil").await;
    let (s, _) = call(
        &evil_c,
        Method::POST,
        &format!("/workspaces/{evil}/expand"),
        None,
    )
    .await;
    assert_eq!(s, 400, "a child config outside the templates directory");
    t.server.shutdown().await.unwrap();
}

async fn files_of_a_running_workspace_and_after_it_stops(backend: Backend) {
    let Some(t) = start_backend(backend, |_| {}).await else {
        return;
    };
    let id = t.create("runner", None).await;
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(30),
    )
    .await;
    // A second token beside the agent's own (which stays valid).
    let c = t.minted(id).await;
    let base = format!("/workspaces/{id}/files");
    let (_, list) = call(&c, Method::GET, &base, None).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == "config.yaml"),
        "{list}"
    );
    let (s, r) = call(
        &c,
        Method::PUT,
        &format!("{base}/notes/today.md"),
        Some(json!({"content": "hello"})),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let (_, f) = call(&c, Method::GET, &format!("{base}/notes/today.md"), None).await;
    assert_eq!(
        f,
        json!({"path": "notes/today.md", "content": "hello", "size": 5})
    );
    let (s, r) = call(
        &c,
        Method::PUT,
        &base,
        Some(json!({"files": {"a.txt": "1"}})),
    )
    .await;
    let source = if backend == Backend::Local {
        "local"
    } else {
        "container"
    };
    assert_eq!((s, r["source"].as_str()), (200, Some(source)));
    let (s, _) = call(&c, Method::POST, &format!("/workspaces/{id}/pause"), None).await;
    assert_eq!(s, 200);
    let (_, f) = call(&c, Method::GET, &format!("{base}/notes/today.md"), None).await;
    assert_eq!(f["content"], "hello", "readable while stopped");
    let (s, _) = call(&c, Method::DELETE, &format!("{base}/notes"), None).await;
    assert_eq!(s, 200);
    let (s, _) = call(&c, Method::GET, &format!("{base}/notes/today.md"), None).await;
    assert_eq!(s, 404);
    t.client.delete_workspace(id, true).await.unwrap();
    t.server.shutdown().await.unwrap();
}

/// Docker objects (containers, volumes) that name a workspace.
fn docker_objects(id: Uuid) -> Vec<String> {
    let short = &id.to_string()[..12];
    let mut out = Vec::new();
    for args in [
        vec![
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("name=ws-{short}"),
        ],
        vec![
            "volume",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            &format!("name=ws-{short}"),
        ],
    ] {
        let o = std::process::Command::new("docker")
            .args(&args)
            .output()
            .unwrap();
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    out
}

async fn expand_and_collapse_leave_nothing_behind(backend: Backend) {
    let Some(t) = start_backend(backend, |_| {}).await else {
        return;
    };
    let root = t.server.app.config().templates_dir();
    write_file(
        &root,
        "crew/config.yaml",
        "name: Crew\nsub_workspaces:\n  - {config: mate}\n  - {config: cook}\n",
    );
    write_file(
        &root,
        "mate/config.yaml",
        "name: mate\nsub_workspaces:\n  - {config: cook, name: deckhand}\n",
    );
    let lead = t.create("Crew", None).await;
    wait_status(
        &t.client,
        lead,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    let c = t.minted(lead).await;
    let (s, expanded) = call(
        &c,
        Method::POST,
        &format!("/workspaces/{lead}/expand"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{expanded}");
    let mate: Uuid = serde_json::from_value(expanded["children"][0]["id"].clone()).unwrap();
    let mate_c = t.minted(mate).await;
    let (s, grand) = call(
        &mate_c,
        Method::POST,
        &format!("/workspaces/{mate}/expand"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{grand}");
    let mut team: Vec<Uuid> = expanded["children"]
        .as_array()
        .unwrap()
        .iter()
        .chain(grand["children"].as_array().unwrap())
        .map(|c| serde_json::from_value(c["id"].clone()).unwrap())
        .collect();
    team.sort();
    for id in &team {
        wait_status(
            &t.client,
            *id,
            WorkspaceStatus::Online,
            Duration::from_secs(60),
        )
        .await;
    }
    let (s, collapsed) = call(
        &c,
        Method::POST,
        &format!("/workspaces/{lead}/collapse"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{collapsed}");
    assert_eq!(collapsed["removed"].as_array().unwrap().len(), 3);
    for id in &team {
        assert_eq!(
            t.client.get_workspace(*id).await.unwrap().status,
            WorkspaceStatus::Removed
        );
        if backend == Backend::Docker {
            assert_eq!(
                docker_objects(*id),
                Vec::<String>::new(),
                "nothing of {id} is left"
            );
        }
    }
    let (s, _) = call(
        &mate_c,
        Method::GET,
        &format!("/workspaces/{mate}/files"),
        None,
    )
    .await;
    assert_eq!(s, 401, "tokens of the removed are revoked");
    let store = store_of(&t.server).await;
    for id in &team {
        assert!(
            !store.token_has_live(*id).await.unwrap(),
            "{id} has no live token"
        );
    }
    t.client.delete_workspace(lead, true).await.unwrap();
    t.server.shutdown().await.unwrap();
}

/// Restart with a template writes its files at that start; a plain
/// restart keeps `/configs` as it is.
async fn restart_applies_a_template_only_when_asked(backend: Backend) {
    let Some(t) = start_backend(backend, |_| {}).await else {
        return;
    };
    let root = t.server.app.config().templates_dir();
    write_file(&root, "v2/config.yaml", "name: v2\n");
    write_file(&root, "v2/system-prompt.md", "Version two.");
    write_file(&root, "langgraph-default/system-prompt.md", "The default.");
    let id = t.create("phoenix", None).await;
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    let c = t.minted(id).await;
    let base = format!("/workspaces/{id}/files");
    let (s, _) = call(
        &c,
        Method::PUT,
        &format!("{base}/mine.md"),
        Some(json!({"content": "keep me"})),
    )
    .await;
    assert_eq!(s, 200);
    let restart = format!("/workspaces/{id}/restart");
    let app = t.server.app.clone();
    let online_again = |c: Client| {
        let app = app.clone();
        async move {
            // The restart is under way once the status left `online`; wait
            // for it to come back.
            let back = crate::eventually(Duration::from_secs(60), || async {
                let ws = c.get_workspace(id).await.ok()?;
                (ws.status == WorkspaceStatus::Online).then_some(())
            })
            .await;
            if back.is_none() {
                let logs = app.provisioner().unwrap().logs(id, 50).await;
                panic!(
                    "never online again: {:?}\nlogs: {logs:?}",
                    c.get_workspace(id).await
                );
            }
        }
    };
    let (s, r) = call(&c, Method::POST, &restart, None).await;
    assert_eq!(
        (s, r.clone()),
        (
            200,
            json!({"status": "provisioning", "config_dir": "existing-volume", "reset_session": false})
        )
    );
    online_again(t.client.clone()).await;
    let (_, f) = call(&c, Method::GET, &format!("{base}/mine.md"), None).await;
    assert_eq!(f["content"], "keep me", "a plain restart keeps /configs");

    let (s, r) = call(
        &c,
        Method::POST,
        &format!("{restart}?reset=true"),
        Some(json!({"template": "v2"})),
    )
    .await;
    assert_eq!(
        (s, r["config_dir"].as_str(), r["reset_session"].as_bool()),
        (200, Some("v2"), Some(true))
    );
    online_again(t.client.clone()).await;
    let (_, f) = call(&c, Method::GET, &format!("{base}/system-prompt.md"), None).await;
    assert_eq!(f["content"], "Version two.");
    let (_, f) = call(&c, Method::GET, &format!("{base}/mine.md"), None).await;
    assert_eq!(f["content"], "keep me", "a template merges into /configs");

    let (s, r) = call(
        &c,
        Method::POST,
        &restart,
        Some(json!({"apply_template": true})),
    )
    .await;
    assert_eq!(
        (s, r["config_dir"].as_str()),
        (200, Some("langgraph-default"))
    );
    online_again(t.client.clone()).await;
    let (_, f) = call(&c, Method::GET, &format!("{base}/system-prompt.md"), None).await;
    assert_eq!(f["content"], "The default.");

    let (s, e) = call(
        &c,
        Method::POST,
        &restart,
        Some(json!({"template": "nope"})),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (404, Some("template not found: nope"))
    );
    let (s, _) = call(
        &c,
        Method::POST,
        &restart,
        Some(json!({"template": "../v2"})),
    )
    .await;
    assert_eq!(s, 400);
    t.client.delete_workspace(id, true).await.unwrap();
    t.server.shutdown().await.unwrap();
}

backend_tests!(
    restart_applies_a_template_only_when_asked,
    files_of_a_running_workspace_and_after_it_stops,
    expand_and_collapse_leave_nothing_behind
);

/// Every content route through the typed client (`molecule-client`), as a
/// Rust user of the platform calls them.
#[tokio::test]
async fn content_routes_through_the_typed_client() {
    let t = start().await;
    let admin = &t.client;
    let files: std::collections::BTreeMap<String, String> = [
        ("config.yaml", "name: Typed\nshared_context: [brief.md]\n"),
        ("brief.md", "the brief"),
        ("docs/a b.md", "spaced"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let imported = admin.import_template("Typed", files).await.unwrap();
    assert_eq!(imported.id, "typed");
    assert_eq!(admin.templates().await.unwrap()[0].id, "typed");
    let id = admin
        .create_workspace(&molecule_types::dto::CreateWorkspace {
            name: "typed".into(),
            template: Some("typed".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let token = t.register(id).await;
    let c = t.as_workspace(id, &token);
    let listed = c.list_files(id, None, Some("docs"), Some(2)).await.unwrap();
    assert_eq!(listed[0].path, "a b.md");
    assert_eq!(
        c.read_file(id, "docs/a b.md", None).await.unwrap().content,
        "spaced"
    );
    c.write_file(id, "notes/n.md", "n").await.unwrap();
    let replaced = c
        .replace_files(id, [("x.md".to_string(), "x".to_string())].into())
        .await
        .unwrap();
    assert_eq!((replaced.files, replaced.source.as_str()), (1, "seed"));
    c.delete_file(id, "notes").await.unwrap();
    assert!(c.read_file(id, "notes/n.md", None).await.is_err());
    assert_eq!(c.shared_context(id).await.unwrap()[0].content, "the brief");

    let assigned = c.assign_agent(id, "m1").await.unwrap();
    assert_eq!(c.replace_agent(id, "m2").await.unwrap().old_model, "m1");
    let other = t.create("other", None).await;
    let moved = c.move_agent(id, other).await.unwrap();
    assert_ne!(moved.agent_id, assigned.agent_id);
    assert!(c.remove_agent(id).await.is_err(), "moved away");

    let v = molecule_types::content::ViewportView {
        x: 3.0,
        y: 4.0,
        zoom: 2.0,
    };
    admin.save_viewport(&v).await.unwrap();
    assert_eq!(admin.viewport().await.unwrap(), v);

    let bundle = admin.export_bundle(id).await.unwrap();
    assert_eq!(
        bundle.prompts["config.yaml"],
        "name: Typed\nshared_context: [brief.md]\n"
    );
    let back = admin.import_bundle(&bundle).await.unwrap();
    assert_eq!(back.status, "provisioning");
    let org = admin
        .import_org(&molecule_types::content::OrgImport {
            dir: None,
            template: Some(json!({"name": "O", "workspaces": [{"name": "A"}, {"name": "B", "files_dir": "x"}]})),
        })
        .await;
    let err = org.unwrap_err().to_string();
    assert!(err.contains("needs an org directory"), "{err}");
    let partial = admin
        .import_org(&molecule_types::content::OrgImport {
            dir: None,
            template: Some(json!({"name": "O", "workspaces": [{"name": "A"}, {"name": ""}]})),
        })
        .await
        .unwrap();
    assert_eq!(
        (partial.count, partial.error.is_some()),
        (1, true),
        "207 is Ok with its error"
    );
    assert!(admin.org_templates().await.unwrap().is_empty());
    let expanded = c.expand(id).await;
    assert!(expanded.is_err(), "no sub_workspaces in the template");
    assert!(c.collapse(id).await.unwrap().removed.is_empty());
    t.server.shutdown().await.unwrap();
}
