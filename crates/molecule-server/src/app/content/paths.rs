//! Path rules for everything a client names inside a root (a template, a
//! file in a workspace, an org directory, a prompt file, a bundle's skill
//! file): relative, '/'-separated, no `..`, no absolute path, no NUL or
//! backslash. A name that breaks a rule is a 400 and touches nothing.

use std::path::{Path, PathBuf};

use crate::error::{AppError, AppResult};

/// The cleaned form of a relative path: `.` and empty components dropped;
/// `""` when nothing is left (the root itself).
pub fn clean_relative(raw: &str) -> AppResult<String> {
    let bad = |why: &str| AppError::invalid(format!("invalid path {raw:?}: {why}"));
    if raw.contains('\0') {
        return Err(bad("contains NUL"));
    }
    if raw.contains('\\') {
        return Err(bad("contains a backslash"));
    }
    if raw.starts_with('/') {
        return Err(bad("must be relative"));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad("must not contain '..'")),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// A non-empty relative path (a file, not the root).
pub fn file_path(raw: &str) -> AppResult<String> {
    let clean = clean_relative(raw)?;
    if clean.is_empty() {
        return Err(AppError::invalid("path is required"));
    }
    Ok(clean)
}

/// `root` joined with a cleaned relative path, refusing anything that
/// resolves outside `root` through a symlink (checked on what exists).
pub fn inside(root: &Path, rel: &str) -> AppResult<PathBuf> {
    let clean = clean_relative(rel)?;
    let joined = clean
        .split('/')
        .filter(|p| !p.is_empty())
        .fold(root.to_path_buf(), |p, c| p.join(c));
    // Walk what exists of the path: no component may be a symlink.
    let mut at = root.to_path_buf();
    for part in clean.split('/').filter(|p| !p.is_empty()) {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(AppError::invalid(format!(
                    "invalid path {rel:?}: a symbolic link is in the way"
                )));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_cleaned_and_escapes_refused() {
        for (raw, want) in [
            ("a/b.txt", "a/b.txt"),
            ("./a//b/", "a/b"),
            ("", ""),
            (".", ""),
        ] {
            assert_eq!(clean_relative(raw).unwrap(), want, "{raw}");
        }
        for raw in [
            "../x",
            "a/../../b",
            "a/..",
            "/etc/passwd",
            "a\\..\\b",
            "a\0b",
        ] {
            assert!(clean_relative(raw).is_err(), "{raw}");
        }
        assert!(file_path("./").is_err());
    }

    #[test]
    fn symlinks_inside_the_root_are_refused() {
        let root = std::env::temp_dir().join(format!("molecule-paths-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        assert!(inside(&root, "real/x").is_ok());
        assert!(inside(&root, "link/passwd").is_err());
        assert!(inside(&root, "missing/deeper").is_ok());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
