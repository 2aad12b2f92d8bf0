//! The files API of the Docker backend against the real engine, with the
//! agent image (`cargo xtask image`; never pulled) as both the workspace
//! image and the helpers' utility image: a running workspace, a stopped
//! one, one whose container is gone but whose config volume is kept, and a
//! busybox workspace whose image has no agent binary. Without an engine or
//! the image the tests print a note and return, except under `CI=true`.

use crate::docker_backend::{Cleanup, IMAGE, NETWORK, cli, docker};
use crate::support::{bad_path, in_ci, spec};
use molecule_provisioner::docker::{DockerOptions, DockerProvisioner};
use molecule_provisioner::{FileRoot, FileSource, ListDepth, ProvisionError, Provisioner};
use molecule_types::container_name;
use std::sync::OnceLock;
use std::time::Duration;
use uuid::Uuid;

const AGENT_IMAGE: &str = "molecule/agent:latest";
const MAX: u64 = 5 * 1024 * 1024;

/// The agent image is there and knows `fs-rm` (an image built before it
/// existed would make every delete fail).
fn agent_image_ready() -> Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let args = ["run", "--rm", "--pull", "never", "--network", "none"];
            let (ok, help) = cli(&[&args[..], &[AGENT_IMAGE, "--help"]].concat());
            if !ok {
                return Err(format!(
                    "{AGENT_IMAGE} is missing: build it with `cargo xtask image`"
                ));
            }
            if !help.contains("fs-rm") {
                return Err(format!(
                    "{AGENT_IMAGE} predates `fs-rm`: rebuild it with `cargo xtask image`"
                ));
            }
            Ok(())
        })
        .clone()
}

fn options(utility_image: &str) -> DockerOptions {
    DockerOptions {
        network: NETWORK.into(),
        stop_grace: Duration::from_secs(1),
        utility_image: utility_image.into(),
        ..Default::default()
    }
}

/// The provisioner with the agent image as utility image, or None (with a
/// note) when Docker or the image is not usable here.
async fn files_docker() -> Option<DockerProvisioner> {
    let p = match DockerProvisioner::connect(options(AGENT_IMAGE)).await {
        Ok(p) => p,
        Err(e) if in_ci() => panic!("CI=true but the Docker engine is unreachable: {e}"),
        Err(e) => {
            eprintln!("note: Docker engine unreachable, docker files test not run: {e}");
            return None;
        }
    };
    match tokio::task::spawn_blocking(agent_image_ready).await {
        Ok(Ok(())) => Some(p),
        Ok(Err(e)) if !in_ci() => {
            eprintln!("note: {e}; docker files test not run");
            None
        }
        Ok(Err(e)) => panic!("{e}"),
        Err(e) => panic!("image check failed: {e}"),
    }
}

/// Files helpers of the workspace that still exist.
fn helpers_of(id: Uuid) -> Vec<String> {
    let filter = format!("label=molecule.helper_for={id}");
    let (ok, out) = cli(&["ps", "-a", "-q", "--filter", &filter]);
    assert!(ok, "docker ps failed");
    out.lines().map(str::to_string).collect()
}

/// Removes leftover helpers (before the volume they hold), then the
/// workspace's container and volumes.
struct FilesCleanup(#[allow(dead_code)] Cleanup, Uuid);

impl Drop for FilesCleanup {
    fn drop(&mut self) {
        for helper in helpers_of(self.1) {
            cli(&["rm", "-f", &helper]);
        }
    }
}

fn cleanup(id: Uuid) -> FilesCleanup {
    FilesCleanup(Cleanup(id), id)
}

fn files(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
        .collect()
}

/// A listing as `name size` for files and `name/` for directories.
async fn listing(
    p: &dyn Provisioner,
    id: Uuid,
    root: FileRoot,
    path: &str,
    depth: u32,
) -> Vec<String> {
    let depth = ListDepth::new(depth).unwrap();
    p.list_files(id, root, path, depth)
        .await
        .unwrap_or_else(|e| panic!("list {root}/{path}: {e:?}"))
        .into_iter()
        .map(|e| {
            if e.dir {
                format!("{}/", e.path)
            } else {
                format!("{} {}", e.path, e.size)
            }
        })
        .collect()
}

async fn read(p: &dyn Provisioner, id: Uuid, path: &str) -> Option<String> {
    p.read_file(id, FileRoot::Configs, path, MAX)
        .await
        .unwrap_or_else(|e| panic!("read {path}: {e:?}"))
        .map(|b| String::from_utf8(b).unwrap())
}

/// The workspace was provisioned with `config.yaml` and `keep.txt`; write,
/// list, read and delete through whatever `p` picks, which must be
/// `write_source` for writes and `delete_source` for deletes.
async fn exercise(
    p: &dyn Provisioner,
    id: Uuid,
    write_source: FileSource,
    delete_source: FileSource,
) {
    let new = files(&[
        ("config.yaml", "name: files\n"),
        ("skills/a/SKILL.md", "# a\n"),
        ("skills/b.md", "b"),
        (".git/HEAD", "ref: main\n"),
        ("skills/node_modules/x.js", "x"),
        ("__pycache__/m.pyc", "c"),
    ]);
    assert_eq!(p.write_files(id, &new).await.unwrap(), write_source);

    let configs = FileRoot::Configs;
    assert_eq!(
        listing(p, id, configs, "", 1).await,
        ["config.yaml 12", "keep.txt 5", "skills/"],
        "a merge keeps keep.txt; skipped names are not listed"
    );
    assert_eq!(
        listing(p, id, configs, "", 2).await,
        [
            "config.yaml 12",
            "keep.txt 5",
            "skills/",
            "skills/a/",
            "skills/b.md 1"
        ]
    );
    assert_eq!(
        listing(p, id, configs, "skills", 5).await,
        ["a/", "a/SKILL.md 4", "b.md 1"]
    );
    assert!(listing(p, id, configs, "missing", 1).await.is_empty());
    assert!(listing(p, id, configs, "config.yaml", 1).await.is_empty());

    assert_eq!(
        read(p, id, "config.yaml").await.as_deref(),
        Some("name: files\n")
    );
    assert_eq!(
        read(p, id, "./skills/a/SKILL.md").await.as_deref(),
        Some("# a\n")
    );
    assert_eq!(
        read(p, id, ".git/HEAD").await.as_deref(),
        Some("ref: main\n")
    );
    assert_eq!(read(p, id, "missing.txt").await, None);
    assert_eq!(read(p, id, "skills").await, None, "a directory is no file");
    let capped = p.read_file(id, configs, "config.yaml", 3).await;
    assert!(
        matches!(capped, Err(ProvisionError::FileTooLarge { limit: 3 })),
        "{capped:?}"
    );

    assert_eq!(p.delete_path(id, "skills/a").await.unwrap(), delete_source);
    assert_eq!(
        listing(p, id, configs, "skills", 5).await,
        ["b.md 1"],
        "the tree is gone, its sibling stays"
    );
    assert_eq!(p.delete_path(id, "keep.txt").await.unwrap(), delete_source);
    assert_eq!(read(p, id, "keep.txt").await, None);
    p.delete_path(id, "never/there.txt")
        .await
        .expect("deleting a missing path is success");

    p.delete_path(id, "").await.unwrap();
    assert!(listing(p, id, configs, "", 5).await.is_empty());
    assert_eq!(read(p, id, ".git/HEAD").await, None, "skipped names go too");
    assert!(
        helpers_of(id).is_empty(),
        "helpers left: {:?}",
        helpers_of(id)
    );
}

fn provisioned(image: &str) -> molecule_provisioner::WorkspaceSpec {
    spec(
        image,
        2,
        &[("config.yaml", "name: old\n"), ("keep.txt", "keep\n")],
    )
}

#[tokio::test]
async fn docker_files_in_a_running_workspace() {
    let Some(p) = files_docker().await else {
        return;
    };
    let s = provisioned(AGENT_IMAGE);
    let id = s.workspace_id;
    let _cleanup = cleanup(id);
    p.ensure(&s).await.expect("ensure");
    assert_eq!(read(&p, id, "keep.txt").await.as_deref(), Some("keep\n"));
    exercise(&p, id, FileSource::Container, FileSource::Container).await;
    // The agent image has no /workspace, /home or /plugins.
    for root in [FileRoot::Workspace, FileRoot::Home, FileRoot::Plugins] {
        assert!(listing(&p, id, root, "", 1).await.is_empty(), "{root}");
    }
    p.remove(id, true).await.expect("remove");
}

#[tokio::test]
async fn docker_files_in_a_stopped_workspace() {
    let Some(p) = files_docker().await else {
        return;
    };
    let s = provisioned(AGENT_IMAGE);
    let id = s.workspace_id;
    let _cleanup = cleanup(id);
    p.ensure(&s).await.expect("ensure");
    p.stop(id).await.expect("stop");
    // The archive API works on the stopped container; deleting needs a
    // process, so it runs in a helper on the volume.
    exercise(&p, id, FileSource::Container, FileSource::Volume).await;
    p.remove(id, true).await.expect("remove");
}

#[tokio::test]
async fn docker_files_after_the_container_is_removed() {
    let Some(p) = files_docker().await else {
        return;
    };
    let s = provisioned(AGENT_IMAGE);
    let id = s.workspace_id;
    let _cleanup = cleanup(id);
    p.ensure(&s).await.expect("ensure");
    p.remove(id, false)
        .await
        .expect("remove the container, keep the volume");
    assert!(!cli(&["inspect", &container_name(id)]).0, "container kept");

    // Only /configs lives in the volume.
    assert!(listing(&p, id, FileRoot::Workspace, "", 1).await.is_empty());
    exercise(&p, id, FileSource::Volume, FileSource::Volume).await;

    // The utility image is never pulled.
    let absent = DockerProvisioner::connect(options("molecule-test/absent:never"))
        .await
        .expect("connect");
    let depth = ListDepth::CHILDREN;
    for result in [
        absent
            .list_files(id, FileRoot::Configs, "", depth)
            .await
            .err(),
        absent.write_files(id, &files(&[("a", "a")])).await.err(),
        absent.delete_path(id, "a").await.err(),
    ] {
        assert!(
            matches!(&result, Some(ProvisionError::ImageMissing { image, .. }) if image == "molecule-test/absent:never"),
            "{result:?}"
        );
    }
    assert!(helpers_of(id).is_empty(), "{:?}", helpers_of(id));

    // Without container and volume there is nothing.
    p.remove(id, true).await.expect("remove with volumes");
    assert_unknown(&p, id).await;
}

async fn assert_unknown(p: &DockerProvisioner, id: Uuid) {
    for root in FileRoot::ALL {
        assert!(listing(p, id, root, "", 5).await.is_empty(), "{root}");
    }
    assert_eq!(read(p, id, "config.yaml").await, None);
    let write = p.write_files(id, &files(&[("a.txt", "a")])).await;
    assert!(matches!(write, Err(ProvisionError::NotFound)), "{write:?}");
    let delete = p.delete_path(id, "").await;
    assert!(
        matches!(delete, Err(ProvisionError::NotFound)),
        "{delete:?}"
    );
    assert!(helpers_of(id).is_empty(), "{:?}", helpers_of(id));
    assert!(
        !cli(&[
            "volume",
            "inspect",
            &format!("{}-configs", container_name(id))
        ])
        .0,
        "a file operation created the volume"
    );
}

#[tokio::test]
async fn docker_files_of_an_unknown_workspace() {
    let Some(p) = files_docker().await else {
        return;
    };
    let id = Uuid::new_v4();
    let _cleanup = cleanup(id);
    assert_unknown(&p, id).await;
}

#[tokio::test]
async fn docker_delete_falls_back_to_a_helper_when_the_image_has_no_agent() {
    // The busybox test image, with the agent image as utility image.
    let Some(_) = docker().await else { return };
    let Some(p) = files_docker().await else {
        return;
    };
    let s = spec(IMAGE, 2, &[("hello.txt", "hi\n"), ("other.txt", "o\n")]);
    let id = s.workspace_id;
    let _cleanup = cleanup(id);
    p.ensure(&s).await.expect("ensure");
    assert_eq!(read(&p, id, "hello.txt").await.as_deref(), Some("hi\n"));
    assert_eq!(
        p.delete_path(id, "hello.txt").await.unwrap(),
        FileSource::Volume
    );
    assert_eq!(read(&p, id, "hello.txt").await, None);
    assert_eq!(read(&p, id, "other.txt").await.as_deref(), Some("o\n"));
    assert!(helpers_of(id).is_empty(), "{:?}", helpers_of(id));
    p.remove(id, true).await.expect("remove");
}

/// Whether `path` exists in the container, as Docker sees it.
async fn exists_in(engine: &bollard::Docker, container: &str, path: &str) -> bool {
    let opts = bollard::query_parameters::ContainerArchiveInfoOptionsBuilder::default()
        .path(path)
        .build();
    engine
        .get_container_archive_info(container, Some(opts))
        .await
        .is_ok()
}

/// Put symlinks into `/configs` (the image has no shell to make them).
async fn plant_symlinks(engine: &bollard::Docker, container: &str, links: &[(&str, &str)]) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, target) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder.append_link(&mut header, name, target).unwrap();
    }
    let archive = builder.into_inner().unwrap();
    let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
        .path("/configs")
        .build();
    engine
        .upload_to_container(container, Some(opts), bollard::body_full(archive.into()))
        .await
        .expect("upload symlinks");
}

#[tokio::test]
async fn docker_files_refuse_traversal_and_never_follow_symlinks() {
    let Some(p) = files_docker().await else {
        return;
    };
    let s = provisioned(AGENT_IMAGE);
    let id = s.workspace_id;
    let name = container_name(id);
    let _cleanup = cleanup(id);
    p.ensure(&s).await.expect("ensure");
    let engine = bollard::Docker::connect_with_unix_defaults()
        .expect("socket")
        .negotiate_version()
        .await
        .expect("version");
    let before = listing(&p, id, FileRoot::Configs, "", 5).await;

    let depth = ListDepth::CHILDREN;
    for bad in [
        "../x",
        "/etc/passwd",
        "a/../../b",
        "..",
        "a//b",
        "a\\b",
        "x\0y",
    ] {
        let write = p
            .write_files(id, &files(&[("ok.txt", "fine"), (bad, "x")]))
            .await;
        assert!(bad_path(&write), "write {bad:?}: {write:?}");
        let list = p.list_files(id, FileRoot::Configs, bad, depth).await;
        assert!(bad_path(&list), "list {bad:?}: {list:?}");
        let read = p.read_file(id, FileRoot::Workspace, bad, MAX).await;
        assert!(bad_path(&read), "read {bad:?}: {read:?}");
        let delete = p.delete_path(id, bad).await;
        assert!(bad_path(&delete), "delete {bad:?}: {delete:?}");
    }
    for everything_by_accident in [".", "./"] {
        let delete = p.delete_path(id, everything_by_accident).await;
        assert!(bad_path(&delete), "{everything_by_accident:?}: {delete:?}");
    }
    assert_eq!(
        listing(&p, id, FileRoot::Configs, "", 5).await,
        before,
        "a refused batch wrote nothing"
    );
    for outside in ["/x", "/b", "/configs/ok.txt", "/etc/passwd"] {
        assert!(
            !exists_in(&engine, &name, outside).await,
            "{outside} appeared"
        );
    }

    plant_symlinks(
        &engine,
        &name,
        &[("etc", "/etc"), ("agent", "/molecule-agent")],
    )
    .await;
    assert_eq!(
        listing(&p, id, FileRoot::Configs, "", 2).await,
        ["agent 0", "config.yaml 10", "etc 0", "keep.txt 5"],
        "symlinks are files of size 0 and never descended into"
    );
    assert!(
        listing(&p, id, FileRoot::Configs, "etc", 1)
            .await
            .is_empty()
    );
    assert_eq!(read(&p, id, "etc/hosts").await, None);
    assert_eq!(read(&p, id, "agent").await, None);
    let write = p.write_files(id, &files(&[("etc/planted", "x")])).await;
    assert!(bad_path(&write), "{write:?}");
    assert!(!exists_in(&engine, &name, "/etc/planted").await);
    let delete = p.delete_path(id, "etc/hosts").await;
    assert!(bad_path(&delete), "{delete:?}");
    assert!(exists_in(&engine, &name, "/etc/hosts").await);

    // Deleting a symlink removes the link, not its target.
    assert_eq!(
        p.delete_path(id, "etc").await.unwrap(),
        FileSource::Container
    );
    p.delete_path(id, "").await.unwrap();
    assert!(listing(&p, id, FileRoot::Configs, "", 5).await.is_empty());
    assert!(exists_in(&engine, &name, "/etc/hosts").await);
    assert!(exists_in(&engine, &name, "/molecule-agent").await);
    assert!(
        exists_in(&engine, &name, "/configs").await,
        "/configs itself stays"
    );
    p.remove(id, true).await.expect("remove");
}

/// A helper left behind by a platform that stopped mid-operation is removed
/// when the backend lists its workspaces (at start-up), once it is older
/// than `stale_helper_after`; a young one is left alone.
#[tokio::test]
async fn docker_stale_files_helpers_are_swept_when_listing() {
    if files_docker().await.is_none() {
        return;
    }
    let instance = format!("sweep-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let id = Uuid::new_v4();
    let _cleanup = cleanup(id);
    let name = format!("{}-files-left", container_name(id));
    let (ok, out) = cli(&[
        "create",
        "--name",
        &name,
        "--label",
        &format!("molecule.helper_for={id}"),
        "--label",
        "molecule.managed=true",
        "--label",
        &format!("molecule.instance={instance}"),
        AGENT_IMAGE,
    ]);
    assert!(ok, "docker create: {out}");
    let young = DockerProvisioner::connect(DockerOptions {
        instance: Some(instance.clone()),
        ..options(AGENT_IMAGE)
    })
    .await
    .unwrap();
    assert!(
        young.list().await.unwrap().is_empty(),
        "helpers are not workspaces"
    );
    assert_eq!(
        helpers_of(id).len(),
        1,
        "a young helper may still be working"
    );
    let sweeping = DockerProvisioner::connect(DockerOptions {
        instance: Some(instance),
        stale_helper_after: Duration::ZERO,
        ..options(AGENT_IMAGE)
    })
    .await
    .unwrap();
    sweeping.list().await.unwrap();
    assert_eq!(
        helpers_of(id),
        Vec::<String>::new(),
        "the stale helper is gone"
    );
}
