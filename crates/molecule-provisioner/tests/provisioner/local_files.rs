//! The files API of the local backend: the same semantics as Docker's, on
//! the configs directory and the directory the process runs in.

use crate::support::{TempDir, bad_path, spec};
use molecule_provisioner::{
    FileRoot, FileSource, ListDepth, LocalProvisioner, ProvisionError, Provisioner,
};
use std::os::unix::fs::PermissionsExt;
use uuid::Uuid;

const MAX: u64 = 5 * 1024 * 1024;

fn idle_program(dir: &std::path::Path) -> String {
    let path = dir.join("idle.sh");
    std::fs::write(&path, "#!/bin/sh\nwhile true; do sleep 0.1; done\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn files(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
        .collect()
}

/// A listing as `name size` for files and `name/` for directories.
async fn listing(
    p: &LocalProvisioner,
    id: Uuid,
    root: FileRoot,
    path: &str,
    depth: u32,
) -> Vec<String> {
    p.list_files(id, root, path, ListDepth::new(depth).unwrap())
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

async fn read(p: &LocalProvisioner, id: Uuid, root: FileRoot, path: &str) -> Option<String> {
    p.read_file(id, root, path, MAX)
        .await
        .unwrap_or_else(|e| panic!("read {path}: {e:?}"))
        .map(|b| String::from_utf8(b).unwrap())
}

#[tokio::test]
async fn local_files_round_trip() {
    let tmp = TempDir::new();
    let p = LocalProvisioner::new(tmp.0.join("data"));
    let shared = tmp.0.join("repo");
    std::fs::create_dir_all(shared.join("src")).unwrap();
    std::fs::write(shared.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::create_dir_all(shared.join("node_modules/x")).unwrap();
    let mut s = spec(
        &idle_program(&tmp.0),
        2,
        &[("config.yaml", "name: old\n"), ("keep.txt", "keep\n")],
    );
    s.workspace_dir = Some((shared.clone(), molecule_provisioner::DirAccess::ReadWrite));
    let id = s.workspace_id;
    p.ensure(&s).await.expect("ensure");

    let new = files(&[
        ("config.yaml", "name: files\n"),
        ("skills/a/SKILL.md", "# a\n"),
        ("skills/b.md", "b"),
        (".git/HEAD", "ref: main\n"),
        ("skills/node_modules/x.js", "x"),
        ("__pycache__/m.pyc", "c"),
    ]);
    assert_eq!(p.write_files(id, &new).await.unwrap(), FileSource::Local);
    let configs = FileRoot::Configs;
    assert_eq!(
        listing(&p, id, configs, "", 1).await,
        ["config.yaml 12", "keep.txt 5", "skills/"]
    );
    assert_eq!(
        listing(&p, id, configs, "", 2).await,
        [
            "config.yaml 12",
            "keep.txt 5",
            "skills/",
            "skills/a/",
            "skills/b.md 1"
        ]
    );
    assert_eq!(
        listing(&p, id, configs, "skills/", 5).await,
        ["a/", "a/SKILL.md 4", "b.md 1"]
    );
    assert!(listing(&p, id, configs, "missing", 1).await.is_empty());
    assert!(listing(&p, id, configs, "keep.txt", 1).await.is_empty());

    assert_eq!(
        read(&p, id, configs, "config.yaml").await.as_deref(),
        Some("name: files\n")
    );
    assert_eq!(read(&p, id, configs, "skills").await, None);
    assert_eq!(read(&p, id, configs, "missing").await, None);
    let capped = p.read_file(id, configs, "config.yaml", 3).await;
    assert!(
        matches!(capped, Err(ProvisionError::FileTooLarge { limit: 3 })),
        "{capped:?}"
    );

    // /workspace is the spec's directory; /home and /plugins do not exist.
    assert_eq!(
        listing(&p, id, FileRoot::Workspace, "", 2).await,
        ["src/", "src/main.rs 13"]
    );
    assert_eq!(
        read(&p, id, FileRoot::Workspace, "src/main.rs")
            .await
            .as_deref(),
        Some("fn main() {}\n")
    );
    for root in [FileRoot::Home, FileRoot::Plugins] {
        assert!(listing(&p, id, root, "", 1).await.is_empty());
        assert_eq!(read(&p, id, root, "x").await, None);
    }

    assert_eq!(
        p.delete_path(id, "skills/a").await.unwrap(),
        FileSource::Local
    );
    assert_eq!(listing(&p, id, configs, "skills", 5).await, ["b.md 1"]);
    p.delete_path(id, "never/there")
        .await
        .expect("missing is success");

    // Files outlive the process and a removal that keeps them.
    p.stop(id).await.expect("stop");
    p.remove(id, false).await.expect("remove, keep files");
    assert_eq!(
        read(&p, id, FileRoot::Workspace, "src/main.rs")
            .await
            .as_deref(),
        Some("fn main() {}\n"),
        "/workspace is still the spec's directory"
    );
    p.write_files(id, &files(&[("late.txt", "late")]))
        .await
        .expect("write after remove");
    p.delete_path(id, "").await.unwrap();
    assert!(listing(&p, id, configs, "", 5).await.is_empty());
    assert!(p.configs_dir(id).is_dir(), "the configs dir itself stays");
    assert!(shared.join("src/main.rs").exists(), "/workspace untouched");

    p.remove(id, true).await.expect("remove");
    let write = p.write_files(id, &files(&[("a", "a")])).await;
    assert!(matches!(write, Err(ProvisionError::NotFound)), "{write:?}");
    let delete = p.delete_path(id, "").await;
    assert!(
        matches!(delete, Err(ProvisionError::NotFound)),
        "{delete:?}"
    );
    assert!(listing(&p, id, configs, "", 1).await.is_empty());
    assert_eq!(read(&p, id, configs, "config.yaml").await, None);
}

#[tokio::test]
async fn local_files_refuse_traversal_and_never_follow_symlinks() {
    let tmp = TempDir::new();
    let p = LocalProvisioner::new(tmp.0.join("data"));
    let s = spec(&idle_program(&tmp.0), 2, &[("config.yaml", "name: x\n")]);
    let id = s.workspace_id;
    p.ensure(&s).await.expect("ensure");
    let configs = p.configs_dir(id);
    let outside = tmp.0.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(&outside, configs.join("out")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), configs.join("secret")).unwrap();

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
            .write_files(id, &files(&[("ok.txt", "x"), (bad, "x")]))
            .await;
        assert!(bad_path(&write), "write {bad:?}: {write:?}");
        let list = p.list_files(id, FileRoot::Configs, bad, depth).await;
        assert!(bad_path(&list), "list {bad:?}: {list:?}");
        let read = p.read_file(id, FileRoot::Configs, bad, MAX).await;
        assert!(bad_path(&read), "read {bad:?}: {read:?}");
        let delete = p.delete_path(id, bad).await;
        assert!(bad_path(&delete), "delete {bad:?}: {delete:?}");
    }
    assert!(bad_path(&p.delete_path(id, ".").await));
    assert!(
        !configs.join("ok.txt").exists(),
        "a refused batch wrote something"
    );
    assert!(!tmp.0.join("data/workspaces/x").exists());

    assert_eq!(
        listing(&p, id, FileRoot::Configs, "", 3).await,
        ["config.yaml 8", "out 0", "secret 0"]
    );
    assert!(
        listing(&p, id, FileRoot::Configs, "out", 1)
            .await
            .is_empty()
    );
    assert_eq!(read(&p, id, FileRoot::Configs, "secret").await, None);
    assert_eq!(
        read(&p, id, FileRoot::Configs, "out/secret.txt").await,
        None
    );
    let write = p.write_files(id, &files(&[("out/planted", "x")])).await;
    assert!(bad_path(&write), "{write:?}");
    assert!(!outside.join("planted").exists());
    let delete = p.delete_path(id, "out/secret.txt").await;
    assert!(bad_path(&delete), "{delete:?}");

    // Writing over a symlink replaces the link, not its target.
    p.write_files(id, &files(&[("secret", "mine")]))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "secret"
    );
    assert_eq!(
        read(&p, id, FileRoot::Configs, "secret").await.as_deref(),
        Some("mine")
    );
    p.delete_path(id, "out").await.unwrap();
    assert!(
        outside.join("secret.txt").exists(),
        "the link's target stays"
    );
    std::os::unix::fs::symlink(&outside, configs.join("again")).unwrap();
    p.delete_path(id, "").await.unwrap();
    assert!(outside.join("secret.txt").exists());
    assert_eq!(std::fs::read_dir(&configs).unwrap().count(), 0);
    p.remove(id, true).await.expect("remove");
}
