//! A workspace's files through Docker's archive API, never through a shell
//! (the agent image is `FROM scratch`): `HEAD …/archive` stats a path,
//! `GET …/archive` streams a tar of it (parsed in `file_archive.rs`),
//! `PUT …/archive` extracts the config archive into `/configs`. Deleting is
//! the one thing the archive API cannot do; the agent binary's `fs-rm`
//! does it.
//!
//! Where an operation runs: the workspace container when it exists, running
//! or not (the daemon mounts a stopped container's volumes for the archive
//! API). When only the config volume is left, a short-lived helper
//! container (`helper.rs`) mounts it, is used unstarted for the archive API
//! (started only to run `fs-rm`), and is removed afterwards, also on error.
//! Without container or volume there is nothing: lists are empty, reads
//! `None`, writes and deletes `NotFound`.
//!
//! Symlinks are never followed: every path is stat'ed one component at a
//! time below its root, and a path through a symlink counts as missing
//! (list, read) or is refused (write, delete). Docker confines what it
//! resolves to the container anyway; this also keeps paths inside the root.

use super::container_spec::{AGENT_BINARY, CONFIGS_PATH, config_archive};
use super::file_archive::{ArchivedFile, ChunkReader, StatKind, list_archive, read_archive};
use super::helper::Helper;
use super::observe::observe;
use super::{DockerProvisioner, facts_of, owner_of};
use crate::files::{READ_LIMIT_CEILING, parent_dirs, relative_dir, relative_files, relative_path};
use crate::{FileEntry, FileRoot, FileSource, ListDepth, Observation, ProvisionError, Result};
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, DownloadFromContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::StreamExt;
use molecule_types::container_name;
use uuid::Uuid;

/// Exit codes of an exec whose program does not exist or cannot run: the
/// workspace's image has no `/molecule-agent`.
const EXEC_NOT_FOUND: [i64; 2] = [126, 127];
/// Chunks of a download in flight between the HTTP body and the parser.
const CHUNKS_IN_FLIGHT: usize = 8;

/// Where a file operation runs.
enum Target {
    /// The workspace's own container, running or not.
    Container(String),
    /// A created, unstarted helper with the config volume at `/configs`.
    Helper(Helper),
}

impl Target {
    fn container(&self) -> &str {
        match self {
            Self::Container(name) => name,
            Self::Helper(h) => &h.name,
        }
    }

    fn source(&self) -> FileSource {
        match self {
            Self::Container(_) => FileSource::Container,
            Self::Helper(_) => FileSource::Volume,
        }
    }
}

/// `root/parts` as an absolute path in the container.
fn full_path(root: FileRoot, parts: &[&str]) -> String {
    let mut path = root.as_path().to_string();
    for part in parts {
        path.push('/');
        path.push_str(part);
    }
    path
}

/// A path stat: what it is and how big.
#[derive(Debug, Clone, Copy)]
struct Stat {
    kind: StatKind,
    size: u64,
}

impl DockerProvisioner {
    pub(super) async fn docker_list_files(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        depth: ListDepth,
    ) -> Result<Vec<FileEntry>> {
        let parts = relative_dir(path).map_err(ProvisionError::BadPath)?;
        let Some(target) = self.files_target(id, root).await? else {
            return Ok(Vec::new());
        };
        let listed = self.list_in(target.container(), root, &parts, depth).await;
        self.finish(target).await;
        listed
    }

    pub(super) async fn docker_read_file(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>> {
        let parts = relative_path(path).map_err(ProvisionError::BadPath)?;
        let max_bytes = max_bytes.min(READ_LIMIT_CEILING);
        let Some(target) = self.files_target(id, root).await? else {
            return Ok(None);
        };
        let read = self
            .read_in(target.container(), root, &parts, max_bytes)
            .await;
        self.finish(target).await;
        read
    }

    pub(super) async fn docker_write_files(
        &self,
        id: Uuid,
        files: &[(String, Vec<u8>)],
    ) -> Result<FileSource> {
        let parsed = relative_files(files).map_err(ProvisionError::BadPath)?;
        let dirs = parent_dirs(&parsed);
        let archive = config_archive(files).map_err(ProvisionError::Failed)?;
        let target = self
            .files_target(id, FileRoot::Configs)
            .await?
            .ok_or(ProvisionError::NotFound)?;
        let written = self.write_in(target.container(), &dirs, archive).await;
        let source = target.source();
        self.finish(target).await;
        written.map(|()| source)
    }

    pub(super) async fn docker_delete_path(&self, id: Uuid, path: &str) -> Result<FileSource> {
        // Only the empty string means everything; `.` is refused.
        let parts = if path.is_empty() {
            Vec::new()
        } else {
            relative_path(path).map_err(ProvisionError::BadPath)?
        };
        let target = full_path(FileRoot::Configs, &parts);
        if let Some((name, running)) = self.workspace_container(id).await? {
            if !self.deletable(&name, &parts).await? {
                return Ok(FileSource::Container);
            }
            if running {
                let cmd = [AGENT_BINARY, "fs-rm", &target].map(String::from);
                let failed = match self.exec_in(&name, &cmd, self.opts.call_timeout).await {
                    Ok(out) => match out.exit_code {
                        Some(0) => return Ok(FileSource::Container),
                        Some(code) if EXEC_NOT_FOUND.contains(&code) => {
                            tracing::info!(workspace_id = %id, container = %name, "workspace image has no {AGENT_BINARY}; deleting through a helper");
                            None
                        }
                        code => Some(ProvisionError::Failed(format!(
                            "fs-rm {target} exited with {code:?}: {}",
                            out.output.trim()
                        ))),
                    },
                    Err(e) => Some(e),
                };
                if let Some(e) = failed {
                    // A container stopping under the exec (a pause just
                    // asked for) is not an error: its volume is still
                    // there, through a helper.
                    if self
                        .workspace_container(id)
                        .await?
                        .is_some_and(|(_, running)| running)
                    {
                        return Err(e);
                    }
                    tracing::info!(workspace_id = %id, container = %name, "the container stopped during the delete; deleting through a helper");
                }
            }
        } else if !self.volume_exists(id).await? {
            return Err(ProvisionError::NotFound);
        }
        let args = vec!["fs-rm".to_string(), target];
        let helper = self.create_helper(id, args).await?;
        let deleted = self.run_fs_rm(&helper.name, &parts).await;
        self.release(helper).await;
        deleted.map(|()| FileSource::Volume)
    }

    /// The workspace's container and whether it runs; `None` when it does
    /// not exist. A same-named container of another workspace is refused.
    async fn workspace_container(&self, id: Uuid) -> Result<Option<(String, bool)>> {
        let name = container_name(id);
        match self.inspect_container(&name).await {
            Ok(c) => {
                if owner_of(&c) != Some(id.to_string().as_str()) {
                    return Err(ProvisionError::Failed(format!(
                        "container {name} does not belong to workspace {id}"
                    )));
                }
                let running = observe(facts_of(&c)) == Observation::Running;
                Ok(Some((name, running)))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Where `root` of the workspace can be reached: its container, else
    /// (for `/configs`, the only root a volume holds) a helper on the
    /// config volume, else nowhere.
    async fn files_target(&self, id: Uuid, root: FileRoot) -> Result<Option<Target>> {
        if let Some((name, _)) = self.workspace_container(id).await? {
            return Ok(Some(Target::Container(name)));
        }
        if root != FileRoot::Configs || !self.volume_exists(id).await? {
            return Ok(None);
        }
        let helper = self.create_helper(id, vec!["--version".into()]).await?;
        Ok(Some(Target::Helper(helper)))
    }

    async fn finish(&self, target: Target) {
        if let Target::Helper(helper) = target {
            self.release(helper).await;
        }
    }

    /// One path's stat; `None` when it does not exist.
    async fn stat(&self, container: &str, path: &str) -> Result<Option<Stat>> {
        let opts = ContainerArchiveInfoOptionsBuilder::default()
            .path(path)
            .build();
        match self
            .call(
                "get_container_archive_info",
                self.docker
                    .get_container_archive_info(container, Some(opts)),
            )
            .await
        {
            Ok(s) => Ok(Some(Stat {
                kind: StatKind::of_mode(s.file_mode),
                size: u64::try_from(s.size).unwrap_or(0),
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What `root/parts` is, stat'ed one component at a time so that no
    /// symlink below the root is followed: `None` when it is missing or a
    /// component before the last is not a plain directory.
    async fn stat_walk(
        &self,
        container: &str,
        root: FileRoot,
        parts: &[&str],
    ) -> Result<Option<Stat>> {
        let mut path = root.as_path().to_string();
        let Some(mut stat) = self.stat(container, &path).await? else {
            return Ok(None);
        };
        for part in parts {
            if stat.kind != StatKind::Dir {
                return Ok(None);
            }
            path.push('/');
            path.push_str(part);
            match self.stat(container, &path).await? {
                Some(s) => stat = s,
                None => return Ok(None),
            }
        }
        Ok(Some(stat))
    }

    async fn list_in(
        &self,
        container: &str,
        root: FileRoot,
        parts: &[&str],
        depth: ListDepth,
    ) -> Result<Vec<FileEntry>> {
        match self.stat_walk(container, root, parts).await? {
            Some(Stat {
                kind: StatKind::Dir,
                ..
            }) => {}
            _ => return Ok(Vec::new()),
        }
        let path = full_path(root, parts);
        match self
            .download(container, &path, move |r| list_archive(r, depth))
            .await
        {
            // Removed since the stat.
            Err(ProvisionError::NotFound) => Ok(Vec::new()),
            listed => listed,
        }
    }

    async fn read_in(
        &self,
        container: &str,
        root: FileRoot,
        parts: &[&str],
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>> {
        match self.stat_walk(container, root, parts).await? {
            Some(Stat {
                kind: StatKind::File,
                size,
            }) if size > max_bytes => {
                return Err(ProvisionError::FileTooLarge { limit: max_bytes });
            }
            Some(Stat {
                kind: StatKind::File,
                ..
            }) => {}
            _ => return Ok(None),
        }
        let path = full_path(root, parts);
        let read = self
            .download(container, &path, move |r| read_archive(r, max_bytes))
            .await;
        match read {
            Ok(ArchivedFile::Contents(bytes)) => Ok(Some(bytes)),
            Ok(ArchivedFile::NotAFile) | Err(ProvisionError::NotFound) => Ok(None),
            Ok(ArchivedFile::TooLarge) => Err(ProvisionError::FileTooLarge { limit: max_bytes }),
            Err(e) => Err(e),
        }
    }

    /// Refuse parent directories that are symlinks or files, then extract.
    /// (The archive's own directory entries make Docker replace a symlink
    /// that appears in between rather than follow it.)
    async fn write_in(&self, container: &str, dirs: &[String], archive: Vec<u8>) -> Result<()> {
        for dir in dirs {
            let path = format!("{CONFIGS_PATH}/{dir}");
            match self.stat(container, &path).await? {
                None
                | Some(Stat {
                    kind: StatKind::Dir,
                    ..
                }) => {}
                Some(Stat {
                    kind: StatKind::Symlink,
                    ..
                }) => {
                    return Err(ProvisionError::BadPath(format!(
                        "{dir:?} is a symlink, which is never followed"
                    )));
                }
                Some(_) => {
                    return Err(ProvisionError::BadPath(format!(
                        "{dir:?} is not a directory"
                    )));
                }
            }
        }
        if archive.is_empty() {
            return Ok(());
        }
        let opts = UploadToContainerOptionsBuilder::default()
            .path(CONFIGS_PATH)
            .build();
        let body = bollard::body_full(archive.into());
        self.call(
            "upload_to_container",
            self.docker.upload_to_container(container, Some(opts), body),
        )
        .await?;
        Ok(())
    }

    /// Whether `/configs/parts` exists and can be deleted: a symlink among
    /// its parents is refused; a missing path needs nothing done.
    async fn deletable(&self, container: &str, parts: &[&str]) -> Result<bool> {
        let Some((_, parents)) = parts.split_last() else {
            return Ok(true);
        };
        let mut path = CONFIGS_PATH.to_string();
        for part in parents {
            path.push('/');
            path.push_str(part);
            match self.stat(container, &path).await?.map(|s| s.kind) {
                Some(StatKind::Dir) => {}
                Some(StatKind::Symlink) => {
                    return Err(ProvisionError::BadPath(format!(
                        "{path} is a symlink, which is never followed"
                    )));
                }
                _ => return Ok(false),
            }
        }
        Ok(self
            .stat(container, &full_path(FileRoot::Configs, parts))
            .await?
            .is_some())
    }

    /// Run the helper created with `fs-rm` and read its verdict.
    async fn run_fs_rm(&self, helper: &str, parts: &[&str]) -> Result<()> {
        if !self.deletable(helper, parts).await? {
            return Ok(());
        }
        let code = self.run_to_exit(helper).await?;
        if code == 0 {
            return Ok(());
        }
        let output = self.container_logs(helper, 20).await.unwrap_or_default();
        Err(ProvisionError::Failed(format!(
            "fs-rm in helper {helper} exited with {code}: {}",
            output.trim()
        )))
    }

    /// Stream the archive of `path` into `parse`, which runs on a blocking
    /// thread as the bytes arrive (a big tree is never held whole). The
    /// download runs under the call deadline; when it fails or times out,
    /// that error wins over whatever the parser made of the cut stream.
    async fn download<T: Send + 'static>(
        &self,
        container: &str,
        path: &str,
        parse: impl FnOnce(ChunkReader) -> Result<T, String> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
        let parser = tokio::task::spawn_blocking(move || parse(ChunkReader::new(rx)));
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(container, Some(opts));
        let pumped = self
            .call("download_from_container", async move {
                while let Some(chunk) = stream.next().await {
                    // The parser has what it needs (a read stops early).
                    if tx.send(chunk?).await.is_err() {
                        break;
                    }
                }
                Ok(())
            })
            .await;
        let parsed = parser
            .await
            .map_err(|e| ProvisionError::Failed(format!("archive parser failed: {e}")))?;
        pumped?;
        parsed.map_err(ProvisionError::Failed)
    }
}
