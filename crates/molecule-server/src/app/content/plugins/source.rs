//! Where a plugin comes from, and staging it: `local://<name>` (or a bare
//! name) from the registry directory, `github://owner/repo[#ref]` by a
//! shallow `git clone` from `MOLECULE_PLUGINS_GIT_BASE` (default
//! `https://github.com`), and `https://…#sha256=<hex>` as a `.tar.gz` whose
//! checksum must match. Staging reads the plugin into memory (at most the
//! configured bytes, within the fetch deadline) and refuses symlinks, `..`,
//! absolute paths and special files, so nothing outside the plugin can be
//! named by it.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::app::App;
use crate::app::a2a::fetch::FetchFailure;

/// The schemes `GET /plugins/sources` lists.
pub const SCHEMES: [&str; 3] = ["github", "https", "local"];

/// A parsed source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Local {
        name: String,
    },
    Github {
        owner: String,
        repo: String,
        reference: Option<String>,
    },
    /// A `.tar.gz` over HTTPS and its expected SHA-256 (lowercase hex).
    Https {
        url: String,
        sha256: String,
    },
}

/// Why a source string is refused (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    UnknownScheme(String),
    Invalid(String),
}

/// Why staging failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageError {
    NotFound(String),
    Timeout,
    TooLarge(u64),
    /// The plugin's content is not acceptable (a symlink, a bad path).
    Invalid(String),
    Failed(String),
}

/// A plugin read into memory: its name and files (relative paths).
#[derive(Debug, Clone)]
pub struct Staged {
    pub name: String,
    pub files: Vec<(String, Vec<u8>)>,
}

/// `^[a-z0-9][a-z0-9._-]{0,127}$`, and never `..`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && !name.contains("..")
}

fn valid_github_part(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && s != "."
        && !s.contains("..")
}

fn valid_ref(r: &str) -> bool {
    !r.is_empty()
        && !r.starts_with('-')
        && r.len() <= 255
        && !r.contains("..")
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
}

impl Source {
    pub fn parse(raw: &str) -> Result<Source, SourceError> {
        let raw = raw.trim();
        let invalid = |m: &str| Err(SourceError::Invalid(m.to_string()));
        let (scheme, spec) = match raw.split_once("://") {
            Some((scheme, spec)) => (scheme, spec),
            None => ("local", raw),
        };
        match scheme {
            "local" => {
                if !valid_name(spec) {
                    return invalid(
                        "plugin name must match ^[a-z0-9][a-z0-9._-]{0,127}$ (no `/`, `\\` or `..`)",
                    );
                }
                Ok(Source::Local {
                    name: spec.to_string(),
                })
            }
            "github" => {
                let (path, reference) = match spec.split_once('#') {
                    Some((p, r)) => (p, Some(r)),
                    None => (spec, None),
                };
                let Some((owner, repo)) = path.split_once('/') else {
                    return invalid("github source must be github://owner/repo[#ref]");
                };
                if !valid_github_part(owner) || !valid_github_part(repo) {
                    return invalid(
                        "github owner and repo: up to 100 of [A-Za-z0-9_.-], starting alphanumeric",
                    );
                }
                if reference.is_some_and(|r| !valid_ref(r)) {
                    return invalid(
                        "github ref: up to 255 of [A-Za-z0-9_./-], not starting with `-`",
                    );
                }
                Ok(Source::Github {
                    owner: owner.to_string(),
                    repo: repo.trim_end_matches(".git").to_string(),
                    reference: reference.map(str::to_string),
                })
            }
            "https" => {
                let Some((url, fragment)) = raw.split_once('#') else {
                    return invalid("https source must end with #sha256=<64 hex digits>");
                };
                let Some(sha256) = fragment.strip_prefix("sha256=") else {
                    return invalid("https source must end with #sha256=<64 hex digits>");
                };
                let sha256 = sha256.to_ascii_lowercase();
                if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                    return invalid("sha256 must be 64 hex digits");
                }
                Ok(Source::Https {
                    url: url.to_string(),
                    sha256,
                })
            }
            other => Err(SourceError::UnknownScheme(other.to_string())),
        }
    }

    /// Whether the platform fetches it from elsewhere (an operator's call:
    /// a workspace token may only install from the registry).
    pub fn is_remote(&self) -> bool {
        !matches!(self, Source::Local { .. })
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Local { name } => write!(f, "local://{name}"),
            Source::Github {
                owner,
                repo,
                reference,
            } => {
                write!(f, "github://{owner}/{repo}")?;
                match reference {
                    Some(r) => write!(f, "#{r}"),
                    None => Ok(()),
                }
            }
            Source::Https { url, sha256 } => write!(f, "{url}#sha256={sha256}"),
        }
    }
}

/// What staging may use.
pub struct StageLimits<'a> {
    pub registry: &'a Path,
    pub git_base: &'a str,
    pub max_bytes: u64,
    pub timeout: Duration,
}

/// Files read so far, against the byte cap.
struct Collect {
    files: Vec<(String, Vec<u8>)>,
    bytes: u64,
    max: u64,
}

impl Collect {
    fn add(&mut self, path: String, data: Vec<u8>) -> Result<(), StageError> {
        self.bytes += data.len() as u64;
        if self.bytes > self.max {
            return Err(StageError::TooLarge(self.max));
        }
        self.files.push((path, data));
        Ok(())
    }
}

impl App {
    /// Stages `source` within the limits.
    pub(super) async fn stage_plugin(
        &self,
        source: &Source,
        limits: &StageLimits<'_>,
    ) -> Result<Staged, StageError> {
        let deadline = Instant::now() + limits.timeout;
        let work = async {
            let mut out = Collect {
                files: Vec::new(),
                bytes: 0,
                max: limits.max_bytes,
            };
            let name = match source {
                Source::Local { name } => {
                    let dir = limits.registry.join(name);
                    if !tokio::fs::metadata(&dir).await.is_ok_and(|m| m.is_dir()) {
                        return Err(StageError::NotFound(format!(
                            "plugin {name:?} is not in the registry"
                        )));
                    }
                    read_tree(&dir, &mut out, Symlinks::Skip).await?;
                    name.clone()
                }
                Source::Github {
                    owner,
                    repo,
                    reference,
                } => {
                    let url = format!(
                        "{}/{owner}/{repo}.git",
                        limits.git_base.trim_end_matches('/')
                    );
                    let tmp = TempDir::new();
                    git_clone(&url, reference.as_deref(), &tmp.0).await?;
                    read_tree(&tmp.0, &mut out, Symlinks::Refuse).await?;
                    repo.to_ascii_lowercase()
                }
                Source::Https { url, sha256 } => {
                    let body = self
                        .fetch_url(url, limits.max_bytes, deadline)
                        .await
                        .map_err(|e| match e {
                            FetchFailure::NotFound => {
                                StageError::NotFound(format!("{url}: not found"))
                            }
                            FetchFailure::Timeout => StageError::Timeout,
                            FetchFailure::TooLarge => StageError::TooLarge(limits.max_bytes),
                            FetchFailure::Failed(m) => StageError::Failed(format!("{url}: {m}")),
                        })?;
                    let digest = hex(&Sha256::digest(&body));
                    if &digest != sha256 {
                        return Err(StageError::Invalid(format!(
                            "sha256 mismatch: expected {sha256}, got {digest}"
                        )));
                    }
                    let (files, root) = super::archive::extract(&body, limits.max_bytes)?;
                    for (path, data) in files {
                        out.add(path, data)?;
                    }
                    root.unwrap_or_else(|| url_stem(url))
                }
            };
            if !valid_name(&name) {
                return Err(StageError::Invalid(format!(
                    "resolved plugin name {name:?} is not a valid plugin name"
                )));
            }
            Ok(Staged {
                name,
                files: out.files,
            })
        };
        tokio::time::timeout_at(deadline, work)
            .await
            .unwrap_or(Err(StageError::Timeout))
    }
}

/// `…/name.tar.gz` → `name`.
fn url_stem(url: &str) -> String {
    let file = url.rsplit('/').next().unwrap_or_default();
    file.trim_end_matches(".tar.gz")
        .trim_end_matches(".tgz")
        .to_ascii_lowercase()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Symlinks {
    /// The registry is the operator's: a symlink in it is left out.
    Skip,
    /// Fetched content: a symlink refuses the whole plugin.
    Refuse,
}

/// Every regular file under `root` (not `.git`), relative paths.
async fn read_tree(root: &Path, out: &mut Collect, symlinks: Symlinks) -> Result<(), StageError> {
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let mut dir = tokio::fs::read_dir(root.join(&rel))
            .await
            .map_err(|e| StageError::Failed(format!("reading {}: {e}", rel.display())))?;
        while let Some(entry) = dir
            .next_entry()
            .await
            .map_err(|e| StageError::Failed(e.to_string()))?
        {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(StageError::Invalid("a file name is not UTF-8".into()));
            };
            if rel.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let path = rel.join(name);
            let kind = entry
                .file_type()
                .await
                .map_err(|e| StageError::Failed(e.to_string()))?;
            if kind.is_symlink() {
                if symlinks == Symlinks::Refuse {
                    return Err(StageError::Invalid(format!(
                        "{} is a symlink: plugins may not hold symlinks",
                        path.display()
                    )));
                }
                continue;
            }
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let mut data = Vec::new();
                let mut file = tokio::fs::File::open(root.join(&path))
                    .await
                    .map_err(|e| StageError::Failed(e.to_string()))?;
                file.read_to_end(&mut data)
                    .await
                    .map_err(|e| StageError::Failed(e.to_string()))?;
                let rel = path.to_string_lossy().replace('\\', "/");
                out.add(rel, data)?;
            }
        }
    }
    out.files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(())
}

/// `git clone --depth=1 [--branch ref] -- <url> <dir>`; "not found" texts
/// become [`StageError::NotFound`].
async fn git_clone(url: &str, reference: Option<&str>, dir: &Path) -> Result<(), StageError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(["clone", "--quiet", "--depth=1"]);
    if let Some(r) = reference {
        cmd.args(["--branch", r]);
    }
    cmd.arg("--")
        .arg(url)
        .arg(dir)
        .env("LANG", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = cmd
        .output()
        .await
        .map_err(|e| StageError::Failed(format!("cannot run git: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let lower = err.to_ascii_lowercase();
    if [
        "not found",
        "does not exist",
        "could not find remote branch",
        "not appear to be a git repository",
    ]
    .iter()
    .any(|n| lower.contains(n))
    {
        Err(StageError::NotFound(err))
    } else {
        Err(StageError::Failed(format!("git clone failed: {err}")))
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        TempDir(std::env::temp_dir().join(format!("molecule-plugin-{}", uuid::Uuid::new_v4())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_by_scheme_and_refuse_what_the_contract_refuses() {
        assert_eq!(
            Source::parse("my-plugin"),
            Ok(Source::Local {
                name: "my-plugin".into()
            })
        );
        assert_eq!(
            Source::parse("github://acme/tools#v1.2"),
            Ok(Source::Github {
                owner: "acme".into(),
                repo: "tools".into(),
                reference: Some("v1.2".into())
            })
        );
        let sha = "a".repeat(64);
        assert_eq!(
            Source::parse(&format!("https://x.example/p.tar.gz#sha256={sha}")),
            Ok(Source::Https {
                url: "https://x.example/p.tar.gz".into(),
                sha256: sha.clone()
            })
        );
        assert_eq!(
            Source::parse("ftp://x"),
            Err(SourceError::UnknownScheme("ftp".into()))
        );
        for bad in [
            "",
            "../etc",
            "a/b",
            "Upper",
            "-dash",
            "local://a\\b",
            "github://acme",
            "github://-acme/x",
            "github://acme/x#-evil",
            "github://acme/x#a..b",
            "https://x.example/p.tar.gz",
            "https://x.example/p.tar.gz#sha256=abc",
        ] {
            assert!(
                matches!(Source::parse(bad), Err(SourceError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            Source::parse("github://acme/tools#v1.2")
                .map(|s| s.to_string())
                .unwrap_or_default(),
            "github://acme/tools#v1.2"
        );
        assert!(!Source::parse("x").unwrap().is_remote());
    }

    #[test]
    fn names_follow_the_registry_rule() {
        for good in ["a", "0x", "my-plugin.v2", "a_b"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "A", ".a", "a/b", "a..b", &"a".repeat(129)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(url_stem("https://h/x/My-Plugin.tar.gz"), "my-plugin");
    }
}
