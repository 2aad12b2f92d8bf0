//! A local workspace's files, with plain `tokio::fs`: `/configs` is the
//! configs directory, `/workspace` the directory the process runs in (the
//! spec's, else the workspace's own), and `/home` and `/plugins` do not
//! exist here (empty lists, no files).
//!
//! Symlinks below a root are never followed, the same rule as Docker's: a
//! listed symlink is a file of size 0, a path through one is missing (list,
//! read) or refused (write, delete), reads open with `O_NOFOLLOW`, and a
//! written file replaces a symlink of its name instead of writing through
//! it. The roots themselves may be symlinks (a temp dir, say). The local
//! backend does not isolate a workspace from the host, so a process that
//! swaps a directory for a symlink mid-operation is not defended against.

use super::LocalProvisioner;
use crate::files::{
    CheckedFile, READ_LIMIT_CEILING, is_skipped, relative_dir, relative_files, relative_path,
};
use crate::{FileEntry, FileRoot, FileSource, ListDepth, ProvisionError, Result};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;
use uuid::Uuid;

fn io_error(what: &str, path: &Path, e: std::io::Error) -> ProvisionError {
    ProvisionError::Failed(format!("{what} {}: {e}", path.display()))
}

/// What a path below a root is, without following symlinks.
enum Found {
    Missing,
    /// A parent is a symlink or not a directory.
    Blocked(PathBuf),
    Dir(PathBuf),
    File(PathBuf, u64),
    /// A symlink, pipe, socket or device.
    Other(PathBuf),
}

/// Walk `root/parts` one component at a time with `lstat`.
async fn find(root: &Path, parts: &[&str]) -> Result<Found> {
    let mut path = root.to_path_buf();
    let mut meta = match tokio::fs::metadata(root).await {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(io_error("stat", root, e)),
    };
    for part in parts {
        if !meta.is_dir() {
            return Ok(Found::Blocked(path));
        }
        path.push(part);
        meta = match tokio::fs::symlink_metadata(&path).await {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Found::Missing),
            Err(e) => return Err(io_error("stat", &path, e)),
        };
    }
    Ok(if meta.is_dir() {
        Found::Dir(path)
    } else if meta.is_file() {
        Found::File(path, meta.len())
    } else {
        Found::Other(path)
    })
}

/// Each parent of `parts` below `root` exists as a plain directory, created
/// as needed; a symlink or file in the way is `BadPath`.
async fn make_parents(root: &Path, parts: &[&str]) -> Result<PathBuf> {
    let mut path = root.to_path_buf();
    let Some((_, parents)) = parts.split_last() else {
        return Ok(path);
    };
    for part in parents {
        path.push(part);
        match tokio::fs::symlink_metadata(&path).await {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.is_symlink() => {
                return Err(ProvisionError::BadPath(format!(
                    "{part:?} is a symlink, which is never followed"
                )));
            }
            Ok(_) => {
                return Err(ProvisionError::BadPath(format!(
                    "{part:?} is not a directory"
                )));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => tokio::fs::create_dir(&path)
                .await
                .or_else(|e| match e.kind() {
                    ErrorKind::AlreadyExists => Ok(()),
                    _ => Err(e),
                })
                .map_err(|e| io_error("create", &path, e))?,
            Err(e) => return Err(io_error("stat", &path, e)),
        }
    }
    Ok(path)
}

/// Write files below `dir` (checked components), replacing files and
/// symlinks of the same name, never writing through a symlink.
pub(super) async fn write_tree(dir: &Path, files: &[CheckedFile<'_>]) -> Result<()> {
    for (parts, contents) in files {
        let parent = make_parents(dir, parts).await?;
        let Some(name) = parts.last() else {
            continue;
        };
        let target = parent.join(name);
        match tokio::fs::symlink_metadata(&target).await {
            Ok(m) if m.is_dir() => {
                return Err(ProvisionError::BadPath(format!(
                    "{} is a directory",
                    parts.join("/")
                )));
            }
            Ok(m) if !m.is_file() => tokio::fs::remove_file(&target)
                .await
                .map_err(|e| io_error("replace", &target, e))?,
            _ => {}
        }
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)
            .await
            .map_err(|e| io_error("write", &target, e))?;
        tokio::io::AsyncWriteExt::write_all(&mut file, contents)
            .await
            .map_err(|e| io_error("write", &target, e))?;
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(|e| io_error("write", &target, e))?;
    }
    Ok(())
}

/// Remove a directory tree (symlinks in it are removed, not followed) or
/// a single file or link. Missing is success.
async fn remove_any(path: &Path) -> Result<()> {
    let removed = match tokio::fs::symlink_metadata(path).await {
        Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(path).await,
        Ok(_) => tokio::fs::remove_file(path).await,
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io_error("remove", path, e)),
        _ => Ok(()),
    }
}

impl LocalProvisioner {
    /// The host directory of `root`, if this backend has one.
    fn root_dir(&self, id: Uuid, root: FileRoot) -> Option<PathBuf> {
        match root {
            FileRoot::Configs => Some(self.configs_dir(id)),
            FileRoot::Workspace => Some(self.work_dir_of(id)),
            FileRoot::Home | FileRoot::Plugins => None,
        }
    }

    pub(super) async fn local_list_files(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        depth: ListDepth,
    ) -> Result<Vec<FileEntry>> {
        let parts = relative_dir(path).map_err(ProvisionError::BadPath)?;
        let Some(root) = self.root_dir(id, root) else {
            return Ok(Vec::new());
        };
        let Found::Dir(dir) = find(&root, &parts).await? else {
            return Ok(Vec::new());
        };
        let mut listed = Vec::new();
        // (directory, its path relative to the listed one, its depth)
        let mut pending = vec![(dir, String::new(), 0usize)];
        while let Some((dir, rel, level)) = pending.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                // Removed while we walked.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("list", &dir, e)),
            };
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| io_error("list", &dir, e))?
            {
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if is_skipped(&name) {
                    continue;
                }
                let Ok(meta) = entry.metadata().await else {
                    continue;
                };
                let path = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                if meta.is_dir() && depth.includes(level + 2) {
                    pending.push((entry.path(), path.clone(), level + 1));
                }
                listed.push(FileEntry {
                    path,
                    size: if meta.is_file() { meta.len() } else { 0 },
                    dir: meta.is_dir(),
                });
            }
        }
        listed.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(listed)
    }

    pub(super) async fn local_read_file(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>> {
        let parts = relative_path(path).map_err(ProvisionError::BadPath)?;
        let max_bytes = max_bytes.min(READ_LIMIT_CEILING);
        let Some(root) = self.root_dir(id, root) else {
            return Ok(None);
        };
        let file = match find(&root, &parts).await? {
            Found::File(_, size) if size > max_bytes => {
                return Err(ProvisionError::FileTooLarge { limit: max_bytes });
            }
            Found::File(file, _) => file,
            _ => return Ok(None),
        };
        let opened = tokio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&file)
            .await;
        let handle = match opened {
            Ok(h) => h,
            // Gone, or swapped for a symlink (ELOOP), since the walk.
            Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ELOOP) => {
                return Ok(None);
            }
            Err(e) => return Err(io_error("read", &file, e)),
        };
        let mut contents = Vec::new();
        handle
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut contents)
            .await
            .map_err(|e| io_error("read", &file, e))?;
        if contents.len() as u64 > max_bytes {
            return Err(ProvisionError::FileTooLarge { limit: max_bytes });
        }
        Ok(Some(contents))
    }

    pub(super) async fn local_write_files(
        &self,
        id: Uuid,
        files: &[(String, Vec<u8>)],
    ) -> Result<FileSource> {
        let parsed = relative_files(files).map_err(ProvisionError::BadPath)?;
        let dir = self.existing_configs_dir(id).await?;
        write_tree(&dir, &parsed).await?;
        Ok(FileSource::Local)
    }

    pub(super) async fn local_delete_path(&self, id: Uuid, path: &str) -> Result<FileSource> {
        // Only the empty string means everything; `.` is refused.
        let parts = if path.is_empty() {
            Vec::new()
        } else {
            relative_path(path).map_err(ProvisionError::BadPath)?
        };
        let dir = self.existing_configs_dir(id).await?;
        if parts.is_empty() {
            let mut entries = tokio::fs::read_dir(&dir)
                .await
                .map_err(|e| io_error("list", &dir, e))?;
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| io_error("list", &dir, e))?
            {
                remove_any(&entry.path()).await?;
            }
            return Ok(FileSource::Local);
        }
        match find(&dir, &parts).await? {
            Found::Missing => {}
            Found::Blocked(at) => {
                let blocked = tokio::fs::symlink_metadata(&at)
                    .await
                    .is_ok_and(|m| m.is_symlink());
                if blocked {
                    return Err(ProvisionError::BadPath(format!(
                        "{} is a symlink, which is never followed",
                        at.strip_prefix(&dir).unwrap_or(&at).display()
                    )));
                }
            }
            Found::Dir(p) | Found::File(p, _) | Found::Other(p) => remove_any(&p).await?,
        }
        Ok(FileSource::Local)
    }

    /// The configs directory, `NotFound` when the workspace has none.
    async fn existing_configs_dir(&self, id: Uuid) -> Result<PathBuf> {
        let dir = self.configs_dir(id);
        match tokio::fs::metadata(&dir).await {
            Ok(m) if m.is_dir() => Ok(dir),
            Ok(_) => Err(ProvisionError::NotFound),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(ProvisionError::NotFound),
            Err(e) => Err(io_error("stat", &dir, e)),
        }
    }
}
