//! `molecule-agent fs-rm <path>…`: recursive removal under `/configs`, for
//! the platform's files API. The agent image is `FROM scratch` (no shell,
//! no `rm`), so the platform runs this instead, by exec in a running
//! workspace or in a short-lived helper container on the config volume.
//!
//! Only `/configs` itself (meaning: everything inside it) and paths below
//! it are accepted, judged lexically after resolving `.` and `..`, and no
//! symlink below `/configs` is followed: a symlink is removed itself, and a
//! path through one is refused. A path that does not exist is success.
//! It does not touch anything else, and does not run the agent.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The directory every path must stay inside.
pub const CONFIGS: &str = "/configs";

/// `arg` resolved lexically: absolute, without `.`, `..` or empty
/// components. `None` when it is not absolute or climbs above `/`.
fn normalise(arg: &str) -> Option<Vec<&str>> {
    let rest = arg.strip_prefix('/')?;
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(part),
        }
    }
    Some(parts)
}

/// The components of `arg` below `/configs` (empty: `/configs` itself).
fn below_configs(arg: &str) -> Result<Vec<&str>, String> {
    if arg.contains('\0') {
        return Err(format!("{arg:?}: contains NUL"));
    }
    let parts = normalise(arg).ok_or_else(|| format!("{arg:?}: not an absolute path"))?;
    match parts.split_first() {
        Some((&"configs", rest)) => Ok(rest.to_vec()),
        _ => Err(format!("{arg:?}: refused, only {CONFIGS} and below")),
    }
}

/// Remove `arg` (a `/configs/…` path) with `configs` standing for
/// `/configs`, so tests can point it at a temporary directory.
pub fn remove(configs: &Path, arg: &str) -> Result<(), String> {
    let parts = below_configs(arg)?;
    let fail = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    let Some((last, parents)) = parts.split_last() else {
        let entries = match std::fs::read_dir(configs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(fail(configs, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| fail(configs, e))?;
            remove_entry(&entry.path()).map_err(|e| fail(&entry.path(), e))?;
        }
        return Ok(());
    };
    let mut path = configs.to_path_buf();
    for part in parents {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.is_symlink() => {
                return Err(format!(
                    "{arg}: refused, {} is a symlink",
                    shown(configs, &path)
                ));
            }
            // A file in the way, or nothing: there is nothing to remove.
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(fail(&path, e)),
        }
    }
    path.push(last);
    match remove_entry(&path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(fail(&path, e)),
        _ => Ok(()),
    }
}

/// A directory tree (std's `remove_dir_all` does not follow symlinks), or
/// one file or symlink.
fn remove_entry(path: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path)?.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// `path` as the container names it.
fn shown(configs: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(configs).unwrap_or(path);
    PathBuf::from(CONFIGS).join(rel).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("molecule-fs-rm-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn only_configs_and_below_are_accepted() {
        let ok: [(&str, &[&str]); 6] = [
            ("/configs", &[]),
            ("/configs/", &[]),
            ("/configs/.", &[]),
            ("/configs/a/b.txt", &["a", "b.txt"]),
            ("/configs//a/./b/../c", &["a", "c"]),
            ("/x/../configs/a", &["a"]),
        ];
        for (arg, want) in ok {
            assert_eq!(below_configs(arg).as_deref(), Ok(want), "{arg}");
        }
        for arg in [
            "/",
            "/etc/passwd",
            "/configs/..",
            "/configs/../etc",
            "/configsx/a",
            "configs/a",
            "",
            "/../configs/../../etc",
            "/configs/a\0b",
        ] {
            assert!(below_configs(arg).is_err(), "{arg:?} accepted");
        }
    }

    #[test]
    fn removes_files_trees_and_everything() {
        let dir = TempDir::new();
        let configs = dir.0.join("configs");
        std::fs::create_dir_all(configs.join("skills/a")).unwrap();
        std::fs::write(configs.join("skills/a/SKILL.md"), "a").unwrap();
        std::fs::write(configs.join("config.yaml"), "x").unwrap();
        std::fs::write(configs.join("keep.txt"), "k").unwrap();

        remove(&configs, "/configs/config.yaml").unwrap();
        assert!(!configs.join("config.yaml").exists());
        remove(&configs, "/configs/skills").unwrap();
        assert!(!configs.join("skills").exists());
        assert!(configs.join("keep.txt").exists());
        remove(&configs, "/configs/missing/deeper").unwrap();
        remove(&configs, "/configs/keep.txt/below").unwrap();

        remove(&configs, "/configs").unwrap();
        assert!(configs.is_dir(), "/configs itself stays");
        assert_eq!(std::fs::read_dir(&configs).unwrap().count(), 0);
    }

    #[test]
    fn symlinks_are_removed_not_followed() {
        let dir = TempDir::new();
        let configs = dir.0.join("configs");
        let outside = dir.0.join("outside");
        std::fs::create_dir_all(&configs).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("precious.txt"), "p").unwrap();
        std::os::unix::fs::symlink(&outside, configs.join("link")).unwrap();

        let through = remove(&configs, "/configs/link/precious.txt");
        assert!(through.is_err(), "{through:?}");
        assert!(outside.join("precious.txt").exists());

        remove(&configs, "/configs/link").unwrap();
        assert!(!configs.join("link").exists());
        assert!(outside.join("precious.txt").exists());

        std::os::unix::fs::symlink(&outside, configs.join("again")).unwrap();
        remove(&configs, "/configs").unwrap();
        assert!(outside.join("precious.txt").exists());
        assert_eq!(std::fs::read_dir(&configs).unwrap().count(), 0);
    }
}
