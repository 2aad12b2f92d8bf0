//! Plugins (api-contract §5.15, issue 15): the registry and its runtime
//! filter, installing a plugin into a running workspace on both backends
//! (files visible through the files API, the workspace restarted and online
//! again), uninstalling it, downloading it as the SDK does, the github
//! source against a local repository, the https tarball source with its
//! checksum, and every refusal the contract lists.

use molecule_client::Method;
use molecule_types::WorkspaceStatus;
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::lifecycle::{Backend, start_backend, wait_status};
use crate::{TempDir, call, eventually, start_with, write_file};

/// A registry with `tools` (claude-code only, two skills, a symlink that
/// must not travel) and `any` (every runtime).
fn registry() -> TempDir {
    let dir = TempDir::default();
    write_file(
        &dir.0,
        "tools/plugin.yaml",
        "version: 1.0.0\ndescription: Handy tools\nauthor: molecule\ntags: [dev]\nskills: [lint]\nruntimes: [claude-code]\n",
    );
    write_file(&dir.0, "tools/skills/lint/SKILL.md", "# lint\n");
    write_file(&dir.0, "tools/rules.md", "be tidy\n");
    std::os::unix::fs::symlink("/etc/passwd", dir.0.join("tools/passwd")).unwrap();
    write_file(&dir.0, "any/plugin.yaml", "version: 2\n");
    dir
}

/// The files of a `.tar.gz`, sorted.
fn untar(gz: &[u8]) -> Vec<(String, String)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    let mut files: Vec<(String, String)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            (path, text)
        })
        .collect();
    files.sort();
    files
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect()
}

#[tokio::test]
async fn the_registry_lists_plugins_by_runtime_and_downloads_them() {
    let reg = registry();
    let dir = reg.0.clone();
    let t = start_with(move |c| c.plugins_dir = Some(dir)).await;
    let (s, all) = call(&t.client, Method::GET, "/plugins", None).await;
    assert_eq!(s, 200);
    assert_eq!(names(&all), ["any", "tools"]);
    assert_eq!(all[1]["skills"], json!(["lint"]));
    let (_, some) = call(&t.client, Method::GET, "/plugins?runtime=langgraph", None).await;
    assert_eq!(names(&some), ["any"]);
    let (_, some) = call(&t.client, Method::GET, "/plugins?runtime=claude_code", None).await;
    assert_eq!(names(&some), ["any", "tools"], "- and _ are the same");
    let (_, sources) = call(&t.client, Method::GET, "/plugins/sources", None).await;
    assert_eq!(sources, json!({"schemes": ["github", "https", "local"]}));

    // Download, as the SDK does: a tar.gz of the plugin, no symlink in it.
    let id = t.create("external", None).await;
    let c = t.minted(id).await;
    let r = c
        .request(
            Method::GET,
            &format!("/workspaces/{id}/plugins/tools/download"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "application/gzip");
    assert_eq!(
        r.headers["content-disposition"],
        "attachment; filename=\"tools.tar.gz\""
    );
    assert_eq!(r.headers["x-plugin-name"], "tools");
    assert_eq!(r.headers["x-plugin-source"], "local://tools");
    assert_eq!(
        r.headers["content-length"].to_str().unwrap(),
        r.body.len().to_string()
    );
    let files = untar(&r.body);
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["plugin.yaml", "rules.md", "skills/lint/SKILL.md"]);

    // Refusals.
    let status_of = |path: String| {
        let c = c.clone();
        async move { call(&c, Method::GET, &path, None).await }
    };
    let (s, body) = status_of(format!(
        "/workspaces/{id}/plugins/other/download?source=local://tools"
    ))
    .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(
        (
            body["resolved_name"].as_str(),
            body["requested_name"].as_str()
        ),
        (Some("tools"), Some("other"))
    );
    let (s, body) = status_of(format!(
        "/workspaces/{id}/plugins/tools/download?source=ftp://x/tools"
    ))
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        body["available_schemes"],
        json!(["github", "https", "local"])
    );
    let (s, body) = status_of(format!("/workspaces/{id}/plugins/nope/download")).await;
    assert_eq!((s, body["source"].as_str()), (404, Some("local://nope")));
    let (s, _) = status_of(format!("/workspaces/{id}/plugins/..%2Fetc/download")).await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &t.client,
        Method::GET,
        &format!("/workspaces/{id}/plugins/tools/download"),
        None,
    )
    .await;
    assert_eq!(s, 401, "a workspace credential is required");
    // Without a runtime backend nothing can be installed.
    let (s, body) = call(
        &c,
        Method::POST,
        &format!("/workspaces/{id}/plugins"),
        Some(json!({"source": "tools"})),
    )
    .await;
    assert_eq!(s, 503, "{body}");
}

/// A git repository at `<base>/acme/<repo>.git` holding a plugin.
fn git_repo(base: &Path, repo: &str, symlink: bool) {
    let dir = base.join("acme").join(format!("{repo}.git"));
    write_file(&dir, "plugin.yaml", "version: 3\nskills: [gitskill]\n");
    write_file(&dir, "skills/gitskill/SKILL.md", "# from git\n");
    if symlink {
        std::os::unix::fs::symlink("/etc/passwd", dir.join("escape")).unwrap();
    }
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(&dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "--quiet", "--initial-branch=main"]);
    git(&["add", "-A"]);
    git(&["commit", "--quiet", "-m", "plugin"]);
    git(&["tag", "v3"]);
}

#[tokio::test]
async fn github_and_https_sources_are_fetched_checked_and_limited() {
    let base = TempDir::default();
    git_repo(&base.0, "gitplug", false);
    git_repo(&base.0, "linky", true);
    let git_base = format!("file://{}", base.0.display());
    let t = start_with(move |c| {
        c.plugins_git_base = git_base;
        c.agent_ca_certs = crate::a2a_tls::test_ca();
    })
    .await;
    let id = t.create("fetcher", None).await;
    let c = t.minted(id).await;
    let get = |path: String| {
        let c = c.clone();
        async move { c.request(Method::GET, &path, None).await.unwrap() }
    };
    let r = get(format!(
        "/workspaces/{id}/plugins/gitplug/download?source=github://acme/gitplug%23v3"
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let files = untar(&r.body);
    assert_eq!(
        files[0],
        (
            "plugin.yaml".into(),
            "version: 3\nskills: [gitskill]\n".into()
        )
    );
    assert_eq!(files.len(), 2, "no .git: {files:?}");
    let r = get(format!(
        "/workspaces/{id}/plugins/gitplug/download?source=github://acme/gitplug%23no-such-ref"
    ))
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = get(format!(
        "/workspaces/{id}/plugins/missing/download?source=github://acme/missing"
    ))
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = get(format!(
        "/workspaces/{id}/plugins/linky/download?source=github://acme/linky"
    ))
    .await;
    assert_eq!(
        r.status,
        400,
        "a symlink refuses a fetched plugin: {}",
        r.text()
    );
    let r = get(format!(
        "/workspaces/{id}/plugins/gitplug/download?source=github://acme/gitplug%23-upload-pack"
    ))
    .await;
    assert_eq!(r.status, 400);

    // The https source: a tar.gz behind TLS, its checksum required.
    let tarball = {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        let mut h = tar::Header::new_gnu();
        let data = b"version: 9\n";
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "webplug/plugin.yaml", &data[..])
            .unwrap();
        b.into_inner().unwrap().finish().unwrap()
    };
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&tarball)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let served = tarball.clone();
    let app = axum::Router::new().route(
        "/webplug.tar.gz",
        axum::routing::get(move || {
            let body = served.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let https = crate::a2a_tls::tls_front(&plain).await;
    let r = get(format!(
        "/workspaces/{id}/plugins/webplug/download?source={https}/webplug.tar.gz%23sha256={sha}"
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        untar(&r.body),
        [("plugin.yaml".into(), "version: 9\n".into())]
    );
    let wrong = "0".repeat(64);
    let r = get(format!(
        "/workspaces/{id}/plugins/webplug/download?source={https}/webplug.tar.gz%23sha256={wrong}"
    ))
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = get(format!(
        "/workspaces/{id}/plugins/webplug/download?source={https}/webplug.tar.gz"
    ))
    .await;
    assert_eq!(r.status, 400, "no checksum");

    // The staged size cap.
    let reg = registry();
    let dir = reg.0.clone();
    let small = start_with(move |c| {
        c.plugins_dir = Some(dir);
        c.plugin_max_bytes = 8;
    })
    .await;
    let sid = small.create("small", None).await;
    let sc = small.minted(sid).await;
    let (s, _) = call(
        &sc,
        Method::GET,
        &format!("/workspaces/{sid}/plugins/tools/download"),
        None,
    )
    .await;
    assert_eq!(s, 413);
}

/// How many times `id` came online (one `WORKSPACE_ONLINE` per registration).
async fn onlines(c: &molecule_client::Client, id: uuid::Uuid) -> usize {
    c.events(Some(id))
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "WORKSPACE_ONLINE")
        .count()
}

/// Waits until `id` registered again after `before` registrations (it was
/// restarted) and is online.
async fn back_online(c: &molecule_client::Client, id: uuid::Uuid, before: usize) {
    eventually(Duration::from_secs(60), || async {
        (onlines(c, id).await > before).then_some(())
    })
    .await
    .expect("the workspace was restarted and registered again");
    wait_status(c, id, WorkspaceStatus::Online, Duration::from_secs(60)).await;
}

async fn installing_a_plugin_restarts_the_workspace_with_it(backend: Backend) {
    let reg = registry();
    let dir = reg.0.clone();
    let Some(t) = start_backend(backend, move |c| c.plugins_dir = Some(dir)).await else {
        return;
    };
    let id = t.create("with-plugins", None).await;
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    let c = t.minted(id).await;
    // The status is committed before its event: count once the first
    // registration's event is in, so a later one means a restart.
    crate::lifecycle::wait_event(&t.client, id, "WORKSPACE_ONLINE").await;
    let before = onlines(&t.client, id).await;
    let (s, body) = call(
        &c,
        Method::POST,
        &format!("/workspaces/{id}/plugins"),
        Some(json!({"source": "tools"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "installed", "plugin": "tools", "source": "local://tools"})
    );
    // Restarted by the governor, and online again.
    back_online(&t.client, id, before).await;
    let (s, file) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{id}/files/plugins/tools/rules.md"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{file}");
    assert_eq!(file["content"], "be tidy\n");
    let (s, installed) = call(&c, Method::GET, &format!("/workspaces/{id}/plugins"), None).await;
    assert_eq!(s, 200, "{installed}");
    assert_eq!(names(&installed), ["tools"]);
    assert_eq!(installed[0]["version"], "1.0.0");
    let (_, compat) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{id}/plugins/compatibility?runtime=claude-code"),
        None,
    )
    .await;
    assert_eq!(
        compat,
        json!({"target_runtime": "claude-code", "compatible": ["tools"], "incompatible": [], "all_compatible": true})
    );
    let (_, compat) = call(
        &c,
        Method::GET,
        &format!("/workspaces/{id}/plugins/compatibility?runtime=langgraph"),
        None,
    )
    .await;
    assert_eq!(compat["all_compatible"], false);

    // Uninstall: gone from /configs, restarted again.
    let before = onlines(&t.client, id).await;
    let (s, body) = call(
        &c,
        Method::DELETE,
        &format!("/workspaces/{id}/plugins/tools"),
        None,
    )
    .await;
    assert_eq!(
        (s, body),
        (200, json!({"status": "uninstalled", "plugin": "tools"}))
    );
    back_online(&t.client, id, before).await;
    let (_, installed) = call(&c, Method::GET, &format!("/workspaces/{id}/plugins"), None).await;
    assert_eq!(installed, json!([]));
    let (s, _) = call(
        &c,
        Method::DELETE,
        &format!("/workspaces/{id}/plugins/tools"),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

backend_tests!(installing_a_plugin_restarts_the_workspace_with_it);
