//! Org import (api-contract §5.16, subsystems §5.2) from an org directory on
//! both runtime backends: a three-level tree with prompts in files, a
//! schedule whose prompt is a file, `.env` secrets, an external workspace
//! and one node with a bad directory (207); then inline templates, org
//! template listing and traversal attempts.

use crate::lifecycle::{Backend, start_backend, wait_status};
use crate::{TestServer, call, start, store_of, write_file};
use molecule_client::{Client, Method};
use molecule_types::WorkspaceStatus;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

const ORG_YAML: &str = r#"
name: Acme
description: A test organisation
defaults:
  tier: 2
  plugins: [search]
  category_routing: {bug: [engineer]}
  idle_prompt: Anything to do?
workspaces:
  - name: CEO
    role: chief
    initial_prompt_file: prompts/ceo.md
    schedules:
      - {name: weekly, cron_expr: "0 9 * * 1", prompt_file: prompts/weekly.md}
      - {name: no prompt, cron_expr: "0 9 * * 1"}
    canvas: {x: 10, y: 20}
    channels: [{type: telegram, config: {bot_token: "${BOT}"}}]
    children:
      - name: CTO
        children:
          - name: Eng Lead
            files_dir: teams/eng
            system_prompt: Lead engineering.
            category_routing: {bug: [], feature: [dev]}
            plugins: ["!search"]
          - name: Dev 1
          - name: Dev 2
      - name: CFO
        children:
          - name: Accountant
      - name: Partner API
        external: true
        url: https://partner.example/a2a
      - name: Broken
        files_dir: teams/missing
      - name: Never
"#;

/// The org directory `acme` under the server's org templates directory.
fn write_org(t: &TestServer) -> std::path::PathBuf {
    let dir = t.server.app.config().org_templates_dir().join("acme");
    write_file(&dir, "org.yaml", ORG_YAML);
    write_file(&dir, ".env", "# shared\nORG_KEY=shared-value\n");
    write_file(&dir, "prompts/ceo.md", "Set the strategy.");
    write_file(&dir, "prompts/weekly.md", "Write the weekly report.");
    write_file(&dir, "teams/eng/.env", "ENG_KEY=\"eng value\"\n");
    write_file(&dir, "teams/eng/notes.md", "Ship it.");
    write_file(&dir, "teams/eng/skills/review/SKILL.md", "Reviews code.");
    dir
}

async fn file(c: &Client, id: Uuid, path: &str) -> String {
    let (s, f) = call(
        c,
        Method::GET,
        &format!("/workspaces/{id}/files/{path}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{path}: {f}");
    f["content"].as_str().unwrap().to_string()
}

async fn org_import_brings_a_whole_org_online(backend: Backend) {
    let Some(t) = start_backend(backend, |_| {}).await else {
        return;
    };
    write_org(&t);
    let (s, list) = call(&t.client, Method::GET, "/org/templates", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        list,
        json!([{"dir": "acme", "name": "Acme", "description": "A test organisation", "workspaces": 10}])
    );
    let (s, out) = call(
        &t.client,
        Method::POST,
        "/org/import",
        Some(json!({"dir": "acme"})),
    )
    .await;
    assert_eq!(s, 207, "{out}");
    let error = out["error"].as_str().unwrap();
    assert!(
        error.contains("Broken") && error.contains("files_dir"),
        "{error}"
    );
    assert_eq!(out["count"], 8);
    let by_name: BTreeMap<String, Value> = out["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap().to_string(), w.clone()))
        .collect();
    let id = |name: &str| -> Uuid { serde_json::from_value(by_name[name]["id"].clone()).unwrap() };
    assert!(
        !by_name.contains_key("Never"),
        "the walk stops at the failing node"
    );
    for (child, parent) in [
        ("CTO", "CEO"),
        ("Eng Lead", "CTO"),
        ("Dev 2", "CTO"),
        ("Accountant", "CFO"),
        ("Partner API", "CEO"),
    ] {
        let ws = t.client.get_workspace(id(child)).await.unwrap();
        assert_eq!(ws.parent_id, Some(id(parent)), "{child}");
    }
    assert_eq!(by_name["CEO"]["plugins_skipped"][0]["type"], "search");
    assert!(
        by_name["Eng Lead"].get("plugins_skipped").is_none(),
        "opted out"
    );
    assert_eq!(by_name["CEO"]["channels_skipped"][0]["type"], "telegram");

    // Every runtime comes up; the external one is online at once.
    for name in by_name.keys() {
        let ws = wait_status(
            &t.client,
            id(name),
            WorkspaceStatus::Online,
            Duration::from_secs(60),
        )
        .await;
        if name == "Partner API" {
            assert_eq!(ws.url, "https://partner.example/a2a");
        }
    }
    let ceo = t.client.get_workspace(id("CEO")).await.unwrap();
    assert_eq!((ceo.tier, ceo.x, ceo.y), (2, 10.0, 20.0));

    // Prompts and generated config, read back through the files API.
    let c = t.minted(id("CEO")).await;
    let config = file(&c, id("CEO"), "config.yaml").await;
    for want in [
        "name: \"CEO\"",
        "initial_prompt: \"Set the strategy.\"",
        "idle_prompt: \"Anything to do?\"",
        "idle_interval_seconds: 600",
        "\"bug\": [\"engineer\"]",
    ] {
        assert!(config.contains(want), "{want} in {config}");
    }
    let eng = t.minted(id("Eng Lead")).await;
    assert_eq!(
        file(&eng, id("Eng Lead"), "system-prompt.md").await,
        "Lead engineering."
    );
    assert_eq!(file(&eng, id("Eng Lead"), "notes.md").await, "Ship it.");
    assert_eq!(
        file(&eng, id("Eng Lead"), "skills/review/SKILL.md").await,
        "Reviews code."
    );
    let eng_config = file(&eng, id("Eng Lead"), "config.yaml").await;
    assert!(
        eng_config.contains("\"feature\": [\"dev\"]") && !eng_config.contains("\"bug\""),
        "{eng_config}"
    );
    let (s, _) = call(
        &eng,
        Method::GET,
        &format!("/workspaces/{}/files/.env", id("Eng Lead")),
        None,
    )
    .await;
    assert_eq!(s, 404, ".env files are secrets, not files");

    // The schedule with its prompt from a file; the one without a prompt skipped.
    let (_, schedules) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{}/schedules", id("CEO")),
        None,
    )
    .await;
    assert_eq!(schedules.as_array().unwrap().len(), 1, "{schedules}");
    assert_eq!(schedules[0]["prompt"], "Write the weekly report.");

    // .env secrets, sealed at rest.
    let store = store_of(&t.server).await;
    let secrets = |rows: Vec<molecule_store::SecretRow>| -> BTreeMap<String, (Vec<u8>, i32)> {
        rows.into_iter()
            .map(|r| (r.key, (r.value, r.encryption_version)))
            .collect()
    };
    let ceo_secrets = secrets(store.secret_list_workspace(id("CEO")).await.unwrap());
    assert_eq!(ceo_secrets.keys().collect::<Vec<_>>(), ["ORG_KEY"]);
    let eng_secrets = secrets(store.secret_list_workspace(id("Eng Lead")).await.unwrap());
    assert_eq!(
        eng_secrets.keys().collect::<Vec<_>>(),
        ["ENG_KEY", "ORG_KEY"]
    );
    for (key, (value, version)) in &eng_secrets {
        assert_eq!(*version, 1, "{key} encrypted");
        assert!(
            !String::from_utf8_lossy(value).contains("value"),
            "{key} not in plaintext"
        );
    }
    let (_, values) = call(
        &eng,
        Method::GET,
        &format!("/workspaces/{}/secrets/values", id("Eng Lead")),
        None,
    )
    .await;
    assert_eq!(values["ENG_KEY"], "eng value");

    for name in ["CEO"] {
        t.client.delete_workspace(id(name), true).await.unwrap();
    }
    t.server.shutdown().await.unwrap();
}

/// Every file of a workspace's `/configs`, through the files API.
async fn configs(c: &Client, id: Uuid) -> BTreeMap<String, String> {
    let (s, list) = call(
        c,
        Method::GET,
        &format!("/workspaces/{id}/files?depth=5"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let mut out = BTreeMap::new();
    for e in list.as_array().unwrap() {
        if e["dir"] == true {
            continue;
        }
        let path = e["path"].as_str().unwrap();
        out.insert(path.to_string(), file(c, id, path).await);
    }
    out
}

async fn bundles_round_trip_file_by_file(backend: Backend) {
    let Some(t) = start_backend(backend, |_| {}).await else {
        return;
    };
    let root = t.server.app.config().templates_dir();
    write_file(
        &root,
        "analyst/config.yaml",
        "name: Analyst\nmodel: \"m-1\"\nskills: [chart]\n",
    );
    write_file(&root, "analyst/system-prompt.md", "Analyse.");
    write_file(
        &root,
        "analyst/skills/chart/SKILL.md",
        "---\nname: Charting\n---\n# Chart\nDraws charts.",
    );
    write_file(&root, "analyst/skills/chart/tool.py", "print('chart')");
    write_file(&root, "analyst/notes/extra.txt", "kept too");
    let lead = t
        .client
        .create_workspace(&molecule_types::dto::CreateWorkspace {
            name: "Lead".into(),
            role: Some("leads".into()),
            template: Some("analyst".into()),
            // Not 3: tier 3 runs privileged, which this CI's engine refuses.
            tier: Some(2),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let child = t
        .client
        .create_workspace(&molecule_types::dto::CreateWorkspace {
            name: "Helper".into(),
            template: Some("analyst".into()),
            parent_id: Some(lead),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    for id in [lead, child] {
        wait_status(
            &t.client,
            id,
            WorkspaceStatus::Online,
            Duration::from_secs(60),
        )
        .await;
    }
    let lc = t.minted(lead).await;
    // Changed in the running workspace, so the export must read the runtime.
    let (s, _) = call(
        &lc,
        Method::PUT,
        &format!("/workspaces/{lead}/files/system-prompt.md"),
        Some(json!({"content": "Analyse deeply."})),
    )
    .await;
    assert_eq!(s, 200);
    let before_lead = configs(&lc, lead).await;
    let before_child = configs(&t.minted(child).await, child).await;
    assert_eq!(before_lead["system-prompt.md"], "Analyse deeply.");

    let (s, bundle) = call(
        &t.client,
        Method::GET,
        &format!("/bundles/export/{lead}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{bundle}");
    assert_eq!(
        (
            bundle["schema"].as_str(),
            bundle["name"].as_str(),
            bundle["description"].as_str()
        ),
        (Some("1.0"), Some("Lead"), Some("leads"))
    );
    assert_eq!(
        (bundle["tier"].clone(), bundle["model"].clone()),
        (json!(2), json!("m-1")),
        "{bundle:#}\n{before_lead:#?}"
    );
    assert_eq!(bundle["system_prompt"], "Analyse deeply.");
    assert_eq!(bundle["skills"][0]["name"], "Charting");
    assert_eq!(bundle["skills"][0]["description"], "Draws charts.");
    assert_eq!(bundle["sub_workspaces"][0]["name"], "Helper");

    t.client.delete_workspace(lead, true).await.unwrap();
    let (s, imported) = call(
        &t.client,
        Method::POST,
        "/bundles/import",
        Some(bundle.clone()),
    )
    .await;
    assert_eq!(s, 201, "{imported}");
    let new_lead: Uuid = serde_json::from_value(imported["workspace_id"].clone()).unwrap();
    let new_child: Uuid =
        serde_json::from_value(imported["children"][0]["workspace_id"].clone()).unwrap();
    assert_ne!(new_lead, lead);
    for id in [new_lead, new_child] {
        wait_status(
            &t.client,
            id,
            WorkspaceStatus::Online,
            Duration::from_secs(60),
        )
        .await;
    }
    let ws = t.client.get_workspace(new_child).await.unwrap();
    assert_eq!(ws.parent_id, Some(new_lead));
    assert_eq!(
        configs(&t.minted(new_lead).await, new_lead).await,
        before_lead,
        "same /configs, file by file"
    );
    assert_eq!(
        configs(&t.minted(new_child).await, new_child).await,
        before_child
    );
    let events = t.client.events(Some(new_lead)).await.unwrap();
    let announced = events
        .iter()
        .find(|e| e.event_type == "WORKSPACE_PROVISIONING")
        .unwrap();
    assert_eq!(
        announced.payload["source_bundle_id"],
        json!(lead.to_string())
    );

    // A bundle with a path that leaves /configs creates nothing.
    let mut evil = bundle.clone();
    evil["name"] = json!("Evil");
    evil["skills"][0]["files"]["../../../etc/cron.d/x"] = json!("boom");
    let (s, _) = call(&t.client, Method::POST, "/bundles/import", Some(evil)).await;
    assert_eq!(s, 400);
    let (_, all) = call(&t.client, Method::GET, "/workspaces", None).await;
    assert!(all.as_array().unwrap().iter().all(|w| w["name"] != "Evil"));
    let (s, _) = call(
        &t.client,
        Method::GET,
        &format!("/bundles/export/{}", Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(s, 404);
    t.client.delete_workspace(new_lead, true).await.unwrap();
    t.server.shutdown().await.unwrap();
}

backend_tests!(
    org_import_brings_a_whole_org_online,
    bundles_round_trip_file_by_file
);

#[tokio::test]
async fn inline_org_templates_import_and_bad_requests_are_refused() {
    let t = start().await;
    let inline = json!({"template": {
        "name": "Tiny",
        "defaults": {"tier": 3},
        "workspaces": [{"name": "Boss", "system_prompt": "Decide.", "children": [{"name": "Helper", "tier": 1}]}]
    }});
    let (s, out) = call(&t.client, Method::POST, "/org/import", Some(inline)).await;
    assert_eq!(s, 201, "{out}");
    assert_eq!(
        (out["org"].as_str(), out["count"].as_u64()),
        (Some("Tiny"), Some(2))
    );
    assert_eq!(
        (
            out["workspaces"][0]["tier"].clone(),
            out["workspaces"][1]["tier"].clone()
        ),
        (json!(3), json!(1))
    );
    let boss: Uuid = serde_json::from_value(out["workspaces"][0]["id"].clone()).unwrap();
    let c = t.minted(boss).await;
    assert_eq!(file(&c, boss, "system-prompt.md").await, "Decide.");

    let root = t.server.app.config().org_templates_dir();
    write_file(&root, "bad/org.yaml", "name: [unclosed\n");
    write_file(
        &root,
        "files/org.yaml",
        "name: Files\nworkspaces:\n  - {name: A, initial_prompt_file: ../../../etc/passwd}\n",
    );
    write_file(
        &root,
        "linked/org.yaml",
        "name: Linked\nworkspaces:\n  - {name: A, initial_prompt_file: secret.md}\n",
    );
    std::os::unix::fs::symlink("/etc/hostname", root.join("linked/secret.md")).unwrap();
    write_file(
        &root,
        "deep/org.yaml",
        "name: Deep\nworkspaces:\n  - name: A\n    children:\n      - {name: B, schedules: [{name: s, cron_expr: '0 9 * * *', prompt_file: /etc/passwd}]}\n",
    );
    write_file(
        &root,
        "escape/org.yaml",
        "name: Escape\nworkspaces:\n  - {name: A}\n  - {name: B, files_dir: ../../..}\n",
    );
    for (body, status, text) in [
        (json!({}), 400, "provide 'dir' or 'template'"),
        (json!({"dir": "../../etc"}), 400, "invalid dir"),
        (json!({"dir": "/etc"}), 400, "invalid dir"),
        (
            json!({"dir": "missing"}),
            404,
            "org template not found: missing",
        ),
        (json!({"dir": "bad"}), 400, "invalid org.yaml"),
        (
            json!({"template": {"name": "", "workspaces": []}}),
            400,
            "template.name is required",
        ),
        (
            json!({"template": {"name": "X", "workspaces": [{"name": "A", "initial_prompt_file": "a.md"}]}}),
            400,
            "needs an org directory",
        ),
        (json!({"dir": "files"}), 400, "invalid initial_prompt_file"),
        (json!({"dir": "deep"}), 400, "invalid schedule prompt_file"),
        (json!({"dir": "escape"}), 400, "invalid files_dir"),
        (json!({"dir": "linked"}), 400, "invalid initial_prompt_file"),
        (
            json!({"template": {"name": "X", "workspaces": [{"name": "A", "schedules": [{"name": "s", "cron_expr": "not cron", "prompt": "p"}]}]}}),
            207,
            "schedule",
        ),
    ] {
        let (s, out) = call(&t.client, Method::POST, "/org/import", Some(body.clone())).await;
        assert_eq!(s, status, "{body}: {out}");
        let msg = out["error"].as_str().unwrap_or_default();
        assert!(msg.contains(text), "{body}: {msg}");
        if s == 207 {
            assert_eq!(
                out["count"], 0,
                "nothing created before the bad node: {out}"
            );
        }
    }
    let (_, all) = call(&t.client, Method::GET, "/workspaces", None).await;
    assert_eq!(
        all.as_array().unwrap().len(),
        2,
        "only the inline import's workspaces exist"
    );
    t.server.shutdown().await.unwrap();
}
