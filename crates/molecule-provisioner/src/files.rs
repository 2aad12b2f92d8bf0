//! The vocabulary of a workspace's files, shared by both backends: the
//! roots the API names, listed entries, where a write or delete went, the
//! listing depth, and the one path rule every file operation (and the
//! config archive) applies. Pure types and functions; reading and writing
//! is each backend's job.

use std::fmt;
use std::str::FromStr;

/// Where a workspace's files live, as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FileRoot {
    /// `/configs`, the config volume (Docker) or configs directory (local).
    #[default]
    Configs,
    /// `/workspace`, the host directory shared with the workspace, if any.
    Workspace,
    /// `/home` inside the container.
    Home,
    /// `/plugins` inside the container.
    Plugins,
}

impl FileRoot {
    pub const ALL: [Self; 4] = [Self::Configs, Self::Workspace, Self::Home, Self::Plugins];

    /// The absolute path inside a workspace container.
    pub fn as_path(self) -> &'static str {
        match self {
            Self::Configs => "/configs",
            Self::Workspace => "/workspace",
            Self::Home => "/home",
            Self::Plugins => "/plugins",
        }
    }
}

impl fmt::Display for FileRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_path())
    }
}

/// The name is not one of the four roots.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown file root {0:?}: use /configs, /workspace, /home or /plugins")]
pub struct UnknownFileRoot(pub String);

impl FromStr for FileRoot {
    type Err = UnknownFileRoot;

    /// The path as the API spells it; the leading slash is optional.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = s.strip_prefix('/').unwrap_or(s);
        Self::ALL
            .into_iter()
            .find(|root| &root.as_path()[1..] == bare)
            .ok_or_else(|| UnknownFileRoot(s.to_string()))
    }
}

/// One listed file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the listed directory, `/`-separated.
    pub path: String,
    /// Bytes of a regular file; 0 for directories and symlinks.
    pub size: u64,
    pub dir: bool,
}

/// Where a write or delete actually went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileSource {
    /// The workspace's container (running or stopped).
    Container,
    /// The config volume, through a short-lived helper container, because
    /// the workspace container is gone or cannot run the operation itself.
    Volume,
    /// The local backend's configs directory.
    Local,
}

impl FileSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Volume => "volume",
            Self::Local => "local",
        }
    }
}

/// How deep a listing goes: 1 = the directory's direct children, at most
/// [`ListDepth::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListDepth(u32);

impl ListDepth {
    pub const MAX: u32 = 5;
    pub const CHILDREN: Self = Self(1);

    /// `None` outside `1..=MAX`.
    pub fn new(depth: u32) -> Option<Self> {
        (1..=Self::MAX).contains(&depth).then_some(Self(depth))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// Whether an entry `components` deep below the listed directory is shown.
    pub(crate) fn includes(self, components: usize) -> bool {
        components >= 1 && components <= self.0 as usize
    }
}

/// Directory entries a listing leaves out, and never descends into: tool
/// caches and VCS internals nobody browses through the files API.
pub const SKIPPED_NAMES: [&str; 4] = [".git", "__pycache__", "node_modules", ".DS_Store"];

pub(crate) fn is_skipped(name: &str) -> bool {
    SKIPPED_NAMES.contains(&name)
}

/// Largest `max_bytes` a read honours, whatever the caller asks for: the
/// file is held in memory.
pub const READ_LIMIT_CEILING: u64 = 64 * 1024 * 1024;

/// Longest path accepted, in bytes (Linux's `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;

/// The components of a relative, `/`-separated path below a root; empty
/// means the root itself. `.` components and one trailing `/` are dropped;
/// absolute paths, `..`, NUL, backslashes and empty components (`a//b`)
/// are refused, so nothing named this way can leave its root lexically.
/// (Symlinks are each backend's concern: neither follows them.)
pub(crate) fn relative_dir(path: &str) -> Result<Vec<&str>, String> {
    let refuse = |why: &str| Err(format!("path {path:?} {why}"));
    if path.len() > MAX_PATH_BYTES {
        return refuse("is too long");
    }
    if path.contains('\0') || path.contains('\\') {
        return refuse("must not contain NUL or backslashes");
    }
    if path.starts_with('/') {
        return refuse("must be relative");
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let mut parts = Vec::new();
    if trimmed.is_empty() {
        return if path.is_empty() {
            Ok(parts)
        } else {
            refuse("has an empty component")
        };
    }
    for part in trimmed.split('/') {
        match part {
            "." => {}
            "" => return refuse("has an empty component"),
            ".." => return refuse("must stay inside its root (no `..`)"),
            _ => parts.push(part),
        }
    }
    Ok(parts)
}

/// [`relative_dir`] of a file: the root itself (an empty path, `.`, `./`)
/// is refused.
pub(crate) fn relative_path(path: &str) -> Result<Vec<&str>, String> {
    let parts = relative_dir(path)?;
    if parts.is_empty() {
        return Err(format!("path {path:?} names no file"));
    }
    Ok(parts)
}

/// A file to write: its checked components and its contents.
pub(crate) type CheckedFile<'a> = (Vec<&'a str>, &'a [u8]);

/// Every file's components, all checked before anything is written, so a
/// bad path in a batch writes nothing.
pub(crate) fn relative_files(files: &[(String, Vec<u8>)]) -> Result<Vec<CheckedFile<'_>>, String> {
    files
        .iter()
        .map(|(path, contents)| Ok((relative_path(path)?, contents.as_slice())))
        .collect()
}

/// The parent directories the files need, shallowest first, each once.
pub(crate) fn parent_dirs(files: &[CheckedFile<'_>]) -> Vec<String> {
    let mut dirs = std::collections::BTreeSet::new();
    for (parts, _) in files {
        for end in 1..parts.len() {
            dirs.insert(parts[..end].to_vec());
        }
    }
    let mut dirs: Vec<Vec<&str>> = dirs.into_iter().collect();
    dirs.sort_by_key(Vec::len);
    dirs.into_iter().map(|d| d.join("/")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside() {
        let ok: [(&str, &[&str]); 8] = [
            ("", &[]),
            (".", &[]),
            ("./", &[]),
            ("a", &["a"]),
            ("a/", &["a"]),
            ("./a/./b.txt", &["a", "b.txt"]),
            ("skills/x/SKILL.md", &["skills", "x", "SKILL.md"]),
            ("..a/b..", &["..a", "b.."]),
        ];
        for (path, want) in ok {
            assert_eq!(relative_dir(path).as_deref(), Ok(want), "{path:?}");
        }
        let bad = [
            "/etc/passwd",
            "/",
            "../x",
            "a/../../b",
            "a/..",
            "..",
            "a//b",
            "//",
            "a\\b",
            "..\\x",
            "a\0b",
            "a//",
        ];
        for path in bad {
            assert!(relative_dir(path).is_err(), "{path:?} accepted");
            assert!(relative_path(path).is_err(), "{path:?} accepted as a file");
        }
        let too_long = "a/".repeat(MAX_PATH_BYTES);
        assert!(relative_dir(&too_long).is_err());
        for root in ["", ".", "./"] {
            assert!(relative_path(root).is_err(), "{root:?} names a file");
        }
    }

    #[test]
    fn one_bad_file_refuses_the_batch() {
        let files = |paths: &[&str]| -> Vec<(String, Vec<u8>)> {
            paths.iter().map(|p| (p.to_string(), vec![])).collect()
        };
        assert!(relative_files(&files(&["a", "b/c"])).is_ok());
        assert!(relative_files(&files(&["a", "../c"])).is_err());
        assert!(relative_files(&files(&["a", ""])).is_err());
    }

    #[test]
    fn parent_dirs_come_shallowest_first_and_once() {
        let files = [
            (vec!["x", "y", "z.txt"], &b""[..]),
            (vec!["a", "b.txt"], &b""[..]),
            (vec!["top.txt"], &b""[..]),
            (vec!["x", "w.txt"], &b""[..]),
        ];
        assert_eq!(parent_dirs(&files), ["a", "x", "x/y"]);
    }

    #[test]
    fn roots_parse_with_or_without_the_slash() {
        for root in FileRoot::ALL {
            assert_eq!(root.as_path().parse::<FileRoot>(), Ok(root));
            assert_eq!(root.as_path()[1..].parse::<FileRoot>(), Ok(root));
        }
        assert_eq!(FileRoot::default(), FileRoot::Configs);
        for bad in ["", "/", "/etc", "configs/", "/Configs"] {
            assert!(bad.parse::<FileRoot>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn depth_is_one_to_five() {
        assert_eq!(ListDepth::new(0), None);
        assert_eq!(ListDepth::new(6), None);
        let two = ListDepth::new(2).unwrap();
        assert_eq!(two.get(), 2);
        assert!(!two.includes(0) && two.includes(1) && two.includes(2) && !two.includes(3));
        assert_eq!(ListDepth::new(5).map(ListDepth::get), Some(ListDepth::MAX));
    }
}
