//! Validation rules for workspace fields (api-contract §5.2, with the
//! checks docs/compat.md lists): directories, templates, tiers,
//! access modes (agent URLs: `outbound`).

use std::path::{Component, Path};

use crate::error::{AppError, AppResult};

/// A UUID given in a body field: 400 `<field> must be a valid UUID`.
pub fn uuid_field(raw: &str, field: &str) -> AppResult<uuid::Uuid> {
    raw.trim()
        .parse()
        .map_err(|_| AppError::invalid(format!("{field} must be a valid UUID")))
}

const FORBIDDEN_DIRS: [&str; 10] = [
    "/etc", "/var", "/proc", "/sys", "/dev", "/boot", "/sbin", "/bin", "/lib", "/usr",
];
pub const ACCESS_MODES: [&str; 3] = ["none", "read_only", "read_write"];

/// `workspace_dir`: absolute, no `..`, not a system directory.
pub fn validate_workspace_dir(dir: &str) -> Result<(), String> {
    let p = Path::new(dir);
    if !p.is_absolute() {
        return Err("workspace_dir must be an absolute path".into());
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err("workspace_dir must not contain '..'".into());
    }
    if FORBIDDEN_DIRS.iter().any(|f| p.starts_with(f)) || p == Path::new("/") {
        return Err(format!(
            "workspace_dir must not be a system directory ({dir})"
        ));
    }
    Ok(())
}

/// A template name is a relative path inside the configs directory.
pub fn validate_template(t: &str) -> Result<(), AppError> {
    let p = Path::new(t);
    let ok = !t.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid("invalid template"))
    }
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
        assert!(validate_workspace_dir("/home/me/project").is_ok());
        assert!(validate_workspace_dir("relative/dir").is_err());
        assert!(validate_workspace_dir("/home/me/../../etc").is_err());
        assert!(validate_workspace_dir("/etc/passwd").is_err());
        assert!(validate_workspace_dir("/usr").is_err());
        assert!(validate_workspace_dir("/").is_err());
        assert!(
            validate_workspace_dir("/library").is_ok(),
            "prefix match is by component, not by string"
        );
    }

    #[test]
    fn template_rules() {
        assert!(validate_template("seo-agent").is_ok());
        assert!(validate_template("team/dev").is_ok());
        assert!(validate_template("../etc").is_err());
        assert!(validate_template("/abs").is_err());
        assert!(validate_template("").is_err());
    }

    #[test]
    fn tier_rules() {
        assert_eq!(validate_tier(0).unwrap(), 1);
        assert_eq!(validate_tier(4).unwrap(), 4);
        assert!(validate_tier(5).is_err());
        assert!(validate_tier(-1).is_err());
    }
}
