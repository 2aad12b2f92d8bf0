//! Running workspaces. One [`Provisioner`] trait, free of Docker types, with
//! two backends: Docker (bollard, one container per workspace, idempotent by
//! name `ws-<id12>` and label `molecule.workspace_id`) and local child
//! processes for machines without Docker.
//!
//! The provisioner observes and acts; it never decides. Whether a workspace
//! is dead and whether to restart it is the server's restart governor's
//! call, made from typed [`Observation`]s: only `NotFound` and `Exited` mean
//! gone, `Unknown` means "could not tell", never "dead".
//!
//! Both backends also copy a workspace's files in and out (`list_files`,
//! `read_file`, `write_files`, `delete_path`) without ever running a shell
//! in the workspace; the types and the path rule are in [`files`].

pub mod docker;
pub mod files;
pub mod local;
pub mod terminal;

pub use docker::{DockerOptions, DockerProvisioner};
pub use files::{FileEntry, FileRoot, FileSource, ListDepth, UnknownFileRoot};
pub use local::LocalProvisioner;
pub use terminal::{Terminal, TerminalControl, TerminalInput, TerminalOutput, TerminalSize};

use async_trait::async_trait;
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

/// Label carrying the workspace id on every container and volume.
pub const LABEL_WORKSPACE: &str = "molecule.workspace_id";
/// Label marking objects managed by Molecule.
pub const LABEL_MANAGED: &str = "molecule.managed";
/// Label naming the platform instance (one per database) that owns an
/// object, so platforms sharing an engine never reap each other's runtimes.
pub const LABEL_INSTANCE: &str = "molecule.instance";
/// Label on a short-lived files helper container naming the workspace whose
/// config volume it mounts. Helpers never carry [`LABEL_WORKSPACE`], so
/// `list` and the orphan reaper never mistake one for the workspace.
pub const LABEL_HELPER_FOR: &str = "molecule.helper_for";
/// Label carrying the [`WorkspaceSpec::generation`] a container was
/// created for.
pub const LABEL_GENERATION: &str = "molecule.generation";
/// Port the agent listens on inside its container.
pub const AGENT_PORT: u16 = 8000;

/// What inspecting a workspace's runtime found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    Running,
    Exited {
        code: Option<i64>,
    },
    NotFound,
    /// The observer failed (timeout, EOF, refused…): no conclusion.
    Unknown(String),
}

impl Observation {
    /// Only a definite answer that the workspace is not running.
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::Exited { .. } | Self::NotFound)
    }
}

/// How a host directory is shared with the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirAccess {
    ReadOnly,
    ReadWrite,
}

/// Everything needed to run one workspace.
#[derive(Debug, Clone)]
pub struct WorkspaceSpec {
    pub workspace_id: Uuid,
    pub name: String,
    /// T1–T4 (0/unknown treated as 2 for limits, as the reference).
    pub tier: i32,
    pub runtime: String,
    /// Image (Docker) or program path (local) resolved by the caller.
    pub image: String,
    /// Environment: WORKSPACE_ID, PLATFORM_URL, decrypted secrets…
    pub env: Vec<(String, String)>,
    /// Files written into `/configs` (path relative to it, contents).
    pub config_files: Vec<(String, Vec<u8>)>,
    pub workspace_dir: Option<(PathBuf, DirAccess)>,
    /// Which start of the workspace this is: the same value for every
    /// attempt of one start (on whichever replica), a new one for the next
    /// start (a restart, a resume). A running instance of another
    /// generation is the previous runtime, which may still be shutting
    /// down after a removal whose answer was lost: it is replaced, never
    /// adopted. One of this generation (started by an attempt whose
    /// platform died before recording it) is adopted.
    pub generation: String,
}

/// Where a started workspace can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Host-reachable URL, `http://127.0.0.1:<port>`.
    pub url: String,
    /// URL other containers use (`http://ws-<id12>:8000`), if any.
    pub internal_url: Option<String>,
    /// True when an already-running instance was adopted, not started.
    pub adopted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: Option<i64>,
    pub output: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The image is not present locally; images are never pulled.
    #[error(
        "image {image} not found locally: build it with `{build_command}` (images are never pulled)"
    )]
    ImageMissing {
        image: String,
        build_command: String,
    },
    #[error("workspace runtime not found")]
    NotFound,
    /// The backend failed or timed out; nothing can be concluded.
    #[error("provisioner unavailable: {0}")]
    Unavailable(String),
    #[error("provisioning failed: {0}")]
    Failed(String),
    /// A file path that is absolute, climbs out with `..`, goes through a
    /// symlink, or is otherwise malformed: the caller's mistake (400).
    #[error("bad path: {0}")]
    BadPath(String),
    /// The file exists but is larger than the read limit.
    #[error("file is larger than {limit} bytes")]
    FileTooLarge { limit: u64 },
}

pub type Result<T, E = ProvisionError> = std::result::Result<T, E>;

/// A log stream of `text` alone (the tail, not followed).
pub fn one_chunk(text: String) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let _ = tx.try_send(text.into_bytes());
    rx
}

#[async_trait]
pub trait Provisioner: Send + Sync + 'static {
    /// `"docker"` or `"local"`.
    fn kind(&self) -> &'static str;

    /// Make the workspace run: adopt a running instance with the same name,
    /// label and [`WorkspaceSpec::generation`], else (re)create and start
    /// it. Idempotent for one generation.
    async fn ensure(&self, spec: &WorkspaceSpec) -> Result<Started>;

    /// Stop the workspace (keeps its volumes). Not running is success.
    async fn stop(&self, id: Uuid) -> Result<()>;

    /// Remove the workspace's container and, when `volumes`, its volumes.
    /// Absent is success.
    async fn remove(&self, id: Uuid, volumes: bool) -> Result<()>;

    /// Observe the workspace. Never errors: failures are `Unknown`.
    async fn inspect(&self, id: Uuid) -> Observation;

    /// The last `tail` lines of output.
    async fn logs(&self, id: Uuid, tail: usize) -> Result<String>;

    /// The last `tail` lines, then (when `follow`) new output as it comes,
    /// as chunks of text. The channel closes when the output ends (the
    /// workspace stopped) or, without `follow`, after the tail; dropping the
    /// receiver stops the reading.
    async fn log_stream(
        &self,
        id: Uuid,
        tail: usize,
        _follow: bool,
    ) -> Result<tokio::sync::mpsc::Receiver<Vec<u8>>> {
        Ok(one_chunk(self.logs(id, tail).await?))
    }

    /// Run a command inside the workspace.
    async fn exec(&self, id: Uuid, cmd: &[String], timeout: Duration) -> Result<ExecOutput>;

    /// An interactive shell on a TTY in the running workspace (the
    /// container; the local backend's workspace directory). `NotFound`
    /// when it does not run.
    async fn terminal(&self, _id: Uuid, _size: TerminalSize) -> Result<Terminal> {
        Err(ProvisionError::Failed(
            "this runtime backend has no terminal".into(),
        ))
    }

    /// Every workspace this backend runs or knows (by label), for adoption
    /// and orphan reaping after a platform restart.
    async fn list(&self) -> Result<Vec<(Uuid, Observation)>>;

    /// The address the platform should additionally listen on so workspaces
    /// can reach it (the Docker network gateway), if any.
    fn platform_listen_ip(&self) -> Option<std::net::IpAddr>;

    // Files. Every `path` is relative to its root and `/`-separated; an
    // absolute path, a `..` component, NUL, a backslash or an empty
    // component (`a//b`) is `BadPath`, and nothing is touched. Symlinks are
    // never followed: a listed symlink is a file of size 0, and a path
    // that goes through one is not found (list, read) or `BadPath`
    // (write, delete). No operation runs a shell or any program of the
    // workspace's own image.

    /// The entries under `root/path`, at most `depth` levels down, sorted by
    /// path. Entries named like [`files::SKIPPED_NAMES`] (`.git`,
    /// `node_modules`, …) are left out and not descended into. A missing
    /// directory, a path that is not a directory, or a root this workspace
    /// does not have (yet) is an empty list.
    async fn list_files(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        depth: ListDepth,
    ) -> Result<Vec<FileEntry>>;

    /// The contents of the regular file `root/path`. `None` when there is
    /// no such file, or the path is a directory or a symlink.
    /// `FileTooLarge` when it is larger than `max_bytes` (itself capped at
    /// [`files::READ_LIMIT_CEILING`]).
    async fn read_file(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>>;

    /// Write the files under `/configs`, creating parent directories and
    /// replacing files of the same name; other files stay (a merge, not a
    /// sync). All paths are checked before anything is written. `NotFound`
    /// when the workspace has no configs at all (never provisioned, or
    /// removed with its volumes).
    async fn write_files(&self, id: Uuid, files: &[(String, Vec<u8>)]) -> Result<FileSource>;

    /// Remove `/configs/path` recursively; `""` exactly empties `/configs`
    /// (the directory itself stays), while `.` or `./` is `BadPath`, so
    /// "everything" is never asked for by accident. A missing path is
    /// success. `NotFound` when the workspace has no configs at all.
    async fn delete_path(&self, id: Uuid, path: &str) -> Result<FileSource>;
}
