//! The security-relevant settings' own rules: the admin token's strength,
//! the secrets key file, and the roots `workspace_dir` may name. Kept apart
//! from `raw.rs` so the rules and their messages are read in one place.

use std::path::{Path, PathBuf};

use super::Mode;
use crate::app::resources::secret_box::SecretsKey;

/// Shortest admin token accepted.
pub const ADMIN_TOKEN_MIN_LEN: usize = 32;
/// Least estimated entropy of an admin token, in bits.
pub const ADMIN_TOKEN_MIN_BITS: f64 = 128.0;

/// How to make a good token, said in every refusal.
const HOW_TO_GENERATE: &str = "generate one with `openssl rand -base64 32`";

/// The admin token must look random: long enough, and with enough
/// estimated entropy (Shannon entropy of its characters × its length), so
/// `aaaaaaaaaaaaaaaa…` or `password1234…` repeated are refused.
pub fn check_admin_token(token: &str) -> Result<(), String> {
    if token.chars().count() < ADMIN_TOKEN_MIN_LEN {
        return Err(format!(
            "MOLECULE_ADMIN_TOKEN must be at least {ADMIN_TOKEN_MIN_LEN} characters of random text; {HOW_TO_GENERATE}"
        ));
    }
    let bits = estimated_entropy_bits(token);
    if bits < ADMIN_TOKEN_MIN_BITS {
        return Err(format!(
            "MOLECULE_ADMIN_TOKEN is too predictable (about {bits:.0} bits of entropy, at least \
             {ADMIN_TOKEN_MIN_BITS:.0} needed); {HOW_TO_GENERATE}"
        ));
    }
    Ok(())
}

/// Length × the Shannon entropy of the character distribution. An upper
/// bound on the real entropy, so it only catches the obviously weak.
pub fn estimated_entropy_bits(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let per_char: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum();
    per_char * n as f64
}

/// `SECRETS_ENCRYPTION_KEY_FILE`: the key in a file (same format as the
/// variable). The file must exist: a production key is never made up.
pub fn read_key_file(path: &Path) -> Result<SecretsKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "SECRETS_ENCRYPTION_KEY_FILE={}: cannot read it: {e}",
            path.display()
        )
    })?;
    SecretsKey::parse(&text)
        .map_err(|e| format!("SECRETS_ENCRYPTION_KEY_FILE={}: {e}", path.display()))
}

/// The development default: `<data dir>/secrets.key`, created on first
/// start with a random key and mode 0600, read on every later start.
/// Returns the key and whether the file was created now.
pub fn load_or_create_key_file(path: &Path) -> Result<(SecretsKey, bool), String> {
    use base64::Engine;
    use rand::RngCore;
    use std::io::Write;
    if path.exists() {
        return read_key_file(path).map(|k| (k, false));
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create the secrets key file {}: {e}", path.display()))?;
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write the secrets key file {}: {e}", path.display()))?;
    Ok((SecretsKey::from_bytes(bytes), true))
}

/// The secrets key: `SECRETS_ENCRYPTION_KEY`, else the file
/// `SECRETS_ENCRYPTION_KEY_FILE` names. Development without either gets
/// `None` here and `<data dir>/secrets.key` at start (`Server::start`);
/// production needs one of the two.
pub fn secrets_key(
    variable: Option<&str>,
    file: Option<&str>,
    mode: Mode,
    problems: &mut Vec<String>,
) -> Option<SecretsKey> {
    let parsed = match (variable, file) {
        (Some(_), Some(_)) => {
            Err("set SECRETS_ENCRYPTION_KEY or SECRETS_ENCRYPTION_KEY_FILE, not both".to_string())
        }
        (Some(raw), None) => SecretsKey::parse(raw),
        (None, Some(path)) => read_key_file(Path::new(path.trim())),
        (None, None) if mode == Mode::Production => Err(
            "MOLECULE_ENV=production requires SECRETS_ENCRYPTION_KEY (32 bytes, base64-encoded: \
             `openssl rand -base64 32`) or SECRETS_ENCRYPTION_KEY_FILE (a file holding such a \
             key) so secrets are encrypted at rest"
                .to_string(),
        ),
        (None, None) => return None,
    };
    parsed.map_err(|problem| problems.push(problem)).ok()
}

/// Where `workspace_dir` may point: the configured roots; in development
/// the user's home by default; in production nowhere until an operator
/// says so.
pub fn workspace_dir_roots(
    raw: Option<&str>,
    mode: Mode,
    problems: &mut Vec<String>,
) -> Vec<PathBuf> {
    match raw {
        Some(raw) => parse_roots(raw).unwrap_or_else(|problem| {
            problems.push(problem);
            Vec::new()
        }),
        None if mode == Mode::Development => std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|h| h.is_absolute() && h != Path::new("/"))
            .into_iter()
            .collect(),
        None => Vec::new(),
    }
}

/// `MOLECULE_WORKSPACE_DIR_ROOTS`: absolute directories, comma-separated.
pub fn parse_roots(raw: &str) -> Result<Vec<PathBuf>, String> {
    let mut roots = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let p = PathBuf::from(entry);
        if !p.is_absolute() || entry.contains('\0') {
            return Err(format!(
                "MOLECULE_WORKSPACE_DIR_ROOTS entry {entry:?} must be an absolute path"
            ));
        }
        if p == Path::new("/") {
            return Err(
                "MOLECULE_WORKSPACE_DIR_ROOTS must not contain `/` (it would allow every directory)"
                    .to_string(),
            );
        }
        roots.push(p);
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_strength() {
        for weak in [
            "aaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababababababababababab",
            "passwordpasswordpasswordpassword",
            "short-but-random-Zx8",
        ] {
            assert!(check_admin_token(weak).is_err(), "{weak}");
        }
        let err = check_admin_token("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap_err();
        assert!(err.contains("openssl rand -base64 32"), "{err}");
        for strong in [
            "q0Jm6Vf3s9C+P1xZb2LkR8tY4nWe7HuA5gDiK0oQmTc=",
            "3f9a1c0e7b2d4a6f8e1c3b5d7f9a0c2e4b6d8f1a3c5e7b9d",
        ] {
            assert!(check_admin_token(strong).is_ok(), "{strong}");
        }
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600_and_read_back() {
        let dir = std::env::temp_dir().join(format!("molecule-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secrets.key");
        let (first, created) = load_or_create_key_file(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, created) = load_or_create_key_file(&path).unwrap();
        assert!(!created);
        assert_eq!(first, again);
        std::fs::write(&path, "not a key").unwrap();
        assert!(load_or_create_key_file(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn roots_must_be_absolute_and_not_slash() {
        assert_eq!(
            parse_roots("/home, /srv/work").unwrap(),
            vec![PathBuf::from("/home"), PathBuf::from("/srv/work")]
        );
        assert!(parse_roots("relative").is_err());
        assert!(parse_roots("/").is_err());
    }
}
