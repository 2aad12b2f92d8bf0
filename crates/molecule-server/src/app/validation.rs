//! Validation rules for workspace fields (api-contract §5.2, with the
//! checks docs/compat.md lists): directories, templates, tiers, access
//! modes, key grammar and field sizes (agent URLs: `outbound`).

use std::path::{Component, Path, PathBuf};

use crate::error::{AppError, AppResult};

/// A UUID given in a body field: 400 `<field> must be a valid UUID`.
pub fn uuid_field(raw: &str, field: &str) -> AppResult<uuid::Uuid> {
    raw.trim()
        .parse()
        .map_err(|_| AppError::invalid(format!("{field} must be a valid UUID")))
}

pub const ACCESS_MODES: [&str; 3] = ["none", "read_only", "read_write"];

/// `workspace_dir` (a host directory mounted into the workspace): an
/// absolute path without `..`, NUL or hidden components (`.ssh`, `.aws`…)
/// inside one of the configured roots (`MOLECULE_WORKSPACE_DIR_ROOTS`). An
/// allow-list, not the reference's deny-list of system directories, which
/// missed `/run`, `/root/.ssh` and every other place. When the directory
/// exists, its real path (symlinks resolved) must be inside a root too.
pub fn validate_workspace_dir(dir: &str, roots: &[PathBuf]) -> Result<(), String> {
    if dir.contains('\0') {
        return Err("workspace_dir must not contain NUL".into());
    }
    let p = Path::new(dir);
    if !p.is_absolute() {
        return Err("workspace_dir must be an absolute path".into());
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err("workspace_dir must not contain '..'".into());
    }
    if p.components()
        .any(|c| matches!(c, Component::Normal(n) if n.to_string_lossy().starts_with('.')))
    {
        return Err("workspace_dir must not name a hidden directory".into());
    }
    if roots.is_empty() {
        return Err(
            "workspace_dir is not allowed here: no MOLECULE_WORKSPACE_DIR_ROOTS are configured"
                .into(),
        );
    }
    if !roots.iter().any(|r| p.starts_with(r)) {
        return Err(format!(
            "workspace_dir must be inside {} (MOLECULE_WORKSPACE_DIR_ROOTS)",
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Ok(real) = std::fs::canonicalize(p) {
        let real_roots: Vec<PathBuf> = roots
            .iter()
            .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
            .collect();
        if !real_roots.iter().any(|r| real.starts_with(r)) {
            return Err("workspace_dir resolves (through a link) outside the allowed roots".into());
        }
    }
    Ok(())
}

/// Longest name (workspace, schedule) or key.
pub const NAME_MAX: usize = 256;
/// Longest short text: a role, a current task, an approval's action or
/// reason, an error sample.
pub const TEXT_MAX: usize = 4 * 1024;
/// Longest long text: a prompt, a delegated task, a notification.
pub const LONG_TEXT_MAX: usize = 64 * 1024;
/// Longest URL.
pub const URL_MAX: usize = 2048;
/// Largest agent card (serialised JSON).
pub const CARD_MAX: usize = 256 * 1024;

/// A field over its cap is a 400 naming the field and the cap (the body as
/// a whole is capped at 1 MiB with a 413 before this).
pub fn cap(field: &str, value: &str, max: usize) -> AppResult<()> {
    if value.len() > max {
        return Err(AppError::invalid(format!(
            "{field} must be at most {max} bytes (got {})",
            value.len()
        )));
    }
    Ok(())
}

/// Shorten `value` to at most `max` bytes on a character boundary, marking
/// the cut. For fields where refusing would do harm (a heartbeat refused
/// for a long error sample would make a live agent look dead).
pub fn truncate_marked(value: &mut String, max: usize) {
    const MARK: &str = "…[truncated]";
    if value.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(MARK.len());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.truncate(end);
    value.push_str(MARK);
}

/// A secret's key becomes an environment variable of the workspace: a
/// portable variable name (`[A-Za-z_][A-Za-z0-9_]*`, at most 256 bytes).
pub fn validate_secret_key(key: &str) -> AppResult<()> {
    cap("key", key, NAME_MAX)?;
    let mut chars = key.chars();
    let good = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if good {
        Ok(())
    } else {
        Err(AppError::invalid(
            "key must be an environment variable name: letters, digits and _, not starting with a digit",
        ))
    }
}

/// A memory key: 1–256 bytes of printable text (no control characters such
/// as NUL, CR or LF), no leading or trailing space, no `\\`, and no empty,
/// `.` or `..` segment between `/`s (keys may be path-like, never
/// traversals).
pub fn validate_memory_key(key: &str) -> AppResult<()> {
    if key.is_empty() {
        return Err(AppError::invalid("key is required"));
    }
    cap("key", key, NAME_MAX)?;
    let refuse = |why: &str| Err(AppError::invalid(format!("key {why}")));
    if key.chars().any(char::is_control) {
        return refuse("must not contain control characters (NUL, CR, LF…)");
    }
    if key.trim() != key {
        return refuse("must not start or end with whitespace");
    }
    if key.contains('\\') {
        return refuse("must not contain a backslash");
    }
    if key.contains('/')
        && key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return refuse("must not contain empty, `.` or `..` path segments");
    }
    if key == "." || key == ".." {
        return refuse("must not be `.` or `..`");
    }
    Ok(())
}

pub fn validate_tier(tier: i64) -> AppResult<i32> {
    match tier {
        0 => Ok(1),
        1..=4 => Ok(tier as i32),
        _ => Err(AppError::invalid(format!(
            "tier must be between 1 and 4, got {tier}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_dir_rules() {
        let roots = [PathBuf::from("/home"), PathBuf::from("/srv/work")];
        let ok = |d: &str| validate_workspace_dir(d, &roots).is_ok();
        assert!(ok("/home/me/project"));
        assert!(ok("/srv/work"));
        assert!(!ok("relative/dir"));
        assert!(!ok("/home/me/../../etc"));
        assert!(!ok("/etc/passwd"));
        assert!(!ok("/run/docker.sock"));
        assert!(!ok("/root/.ssh"));
        assert!(!ok("/home/me/.ssh"), "hidden directories hold credentials");
        assert!(!ok("/home/me\0/x"));
        assert!(
            !ok("/homework"),
            "prefix match is by component, not by string"
        );
        assert!(!ok("/"));
        assert!(
            validate_workspace_dir("/home/me", &[]).is_err(),
            "no roots, no workspace_dir"
        );
    }

    #[test]
    fn workspace_dir_through_a_link_outside_the_roots_is_refused() {
        let root = std::env::temp_dir().join(format!("molecule-root-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&root).unwrap();
        let link = root.join("escape");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        let roots = [root.clone()];
        assert!(validate_workspace_dir(link.to_str().unwrap(), &roots).is_err());
        assert!(validate_workspace_dir(root.join("fine").to_str().unwrap(), &roots).is_ok());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn key_grammar() {
        for ok in ["OPENAI_API_KEY", "_X", "k", "K2"] {
            assert!(validate_secret_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "2FA",
            "A-B",
            "A B",
            "A\0",
            "A\nB",
            "../X",
            &"K".repeat(257),
        ] {
            assert!(validate_secret_key(bad).is_err(), "{bad:?}");
        }
        for ok in ["plan", "notes/today", "user:42", "a.b", "ünïcode key"] {
            assert!(validate_memory_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a\0b",
            "a\r\nb",
            "../etc",
            "a/../b",
            "a//b",
            "/abs",
            "trail/",
            " pad",
            "..",
            "a\\b",
            &"k".repeat(257),
        ] {
            assert!(validate_memory_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn truncation_keeps_characters_whole_and_marks_the_cut() {
        let mut s = "é".repeat(100);
        truncate_marked(&mut s, 51);
        assert!(s.len() <= 51 && s.ends_with("…[truncated]"), "{s}");
        let mut short = "fine".to_string();
        truncate_marked(&mut short, 10);
        assert_eq!(short, "fine");
        assert!(cap("name", &"x".repeat(257), NAME_MAX).is_err());
        assert!(cap("name", &"x".repeat(256), NAME_MAX).is_ok());
    }

    #[test]
    fn tier_rules() {
        assert_eq!(validate_tier(0).unwrap(), 1);
        assert_eq!(validate_tier(4).unwrap(), 4);
        assert!(validate_tier(5).is_err());
        assert!(validate_tier(-1).is_err());
    }
}
