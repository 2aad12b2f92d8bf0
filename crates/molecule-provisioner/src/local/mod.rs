//! The local backend: each workspace is a child process of the server, for
//! machines without Docker. `spec.image` is the program to run (the
//! `molecule-agent` binary); it gets a free loopback port in `PORT`, its
//! config files under `<data_dir>/workspaces/<id>/configs`, and only the
//! environment it is given (the server's own secrets are not inherited).
//! Children die with the server (`kill_on_drop`), so nothing is adopted
//! across a platform restart. Tiers, limits and read-only mounts are not
//! enforced here: that isolation needs Docker. Files are read and written
//! with `tokio::fs` (`files.rs`).

mod files;
mod output;
mod terminal;

use crate::files::relative_files;
use crate::{
    ExecOutput, FileEntry, FileRoot, FileSource, ListDepth, Observation, ProvisionError,
    Provisioner, Result, Started, WorkspaceSpec,
};
use async_trait::async_trait;
use output::SharedLog;
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// Variables of the server's environment a child may see.
const INHERITED_ENV: [&str; 7] = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"];
const POLL: Duration = Duration::from_millis(50);
/// How long a killed process may take to be reaped before `stop` reports it.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// One running (or exited, not yet replaced) workspace process.
struct LocalChild {
    child: Child,
    port: u16,
    log: SharedLog,
    work_dir: PathBuf,
    env: Vec<(String, String)>,
    /// The [`WorkspaceSpec::generation`] it was started for.
    generation: String,
}

impl LocalChild {
    fn observe(&mut self) -> Observation {
        match self.child.try_wait() {
            Ok(None) => Observation::Running,
            Ok(Some(status)) => Observation::Exited {
                code: exit_code(status),
            },
            Err(e) => Observation::Unknown(format!("wait on process: {e}")),
        }
    }

    fn started(&self, adopted: bool) -> Started {
        Started {
            url: format!("http://127.0.0.1:{}", self.port),
            internal_url: None,
            adopted,
        }
    }

    /// Signal the child's whole process group (it leads its own group).
    /// Only called while the child is unreaped, so the pid is still ours.
    /// The one `unsafe` of the project: std has no process-group signal.
    #[allow(unsafe_code)]
    fn signal(&mut self, signal: libc::c_int) {
        let Some(pid) = self.child.id().and_then(|p| libc::pid_t::try_from(p).ok()) else {
            return;
        };
        // SAFETY: kill(2) takes plain integers and touches no memory; the
        // pid is our own unreaped child, so it cannot have been reused.
        let group = unsafe { libc::kill(-pid, signal) };
        if group != 0 {
            // SAFETY: as above.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

/// Exit code as Docker reports it: the status, or 128 + the signal number.
fn exit_code(status: ExitStatus) -> Option<i64> {
    status
        .code()
        .map(i64::from)
        .or_else(|| status.signal().map(|s| 128 + i64::from(s)))
}

/// Workspaces as child processes.
pub struct LocalProvisioner {
    data_dir: PathBuf,
    stop_grace: Duration,
    children: Mutex<HashMap<Uuid, LocalChild>>,
    /// The directory each workspace last ran in, kept past its process (and
    /// a `remove` that keeps files) so `/workspace` stays readable.
    work_dirs: Mutex<HashMap<Uuid, PathBuf>>,
}

impl LocalProvisioner {
    /// Workspaces keep their files under `<data_dir>/workspaces/<id>`.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            stop_grace: Duration::from_secs(5),
            children: Mutex::new(HashMap::new()),
            work_dirs: Mutex::new(HashMap::new()),
        }
    }

    /// How long `stop` waits after SIGTERM before killing.
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// The workspace's own directory.
    pub fn workspace_dir(&self, id: Uuid) -> PathBuf {
        self.data_dir.join("workspaces").join(id.to_string())
    }

    /// Where the workspace's config files are written.
    pub fn configs_dir(&self, id: Uuid) -> PathBuf {
        self.workspace_dir(id).join("configs")
    }

    /// The map is only ever locked for short, non-async work; a poisoned
    /// lock still holds valid handles.
    fn children(&self) -> MutexGuard<'_, HashMap<Uuid, LocalChild>> {
        self.children
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The directory `/workspace` maps to: where the process last ran,
    /// else the workspace's own directory.
    fn work_dir_of(&self, id: Uuid) -> PathBuf {
        let remembered = self
            .work_dirs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
            .cloned();
        remembered.unwrap_or_else(|| self.workspace_dir(id))
    }

    fn remember_work_dir(&self, id: Uuid, dir: Option<PathBuf>) {
        let mut dirs = self
            .work_dirs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match dir {
            Some(dir) => dirs.insert(id, dir),
            None => dirs.remove(&id),
        };
    }

    async fn write_configs(&self, id: Uuid, files: &[(String, Vec<u8>)]) -> Result<PathBuf> {
        let parsed = relative_files(files).map_err(ProvisionError::Failed)?;
        let dir = self.configs_dir(id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| ProvisionError::Failed(format!("create {}: {e}", dir.display())))?;
        files::write_tree(&dir, &parsed).await?;
        Ok(dir)
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL and wait for the reap.
    /// Unknown or already exited is success.
    async fn terminate(&self, id: Uuid, grace: Duration) -> Result<()> {
        let first = if grace.is_zero() {
            libc::SIGKILL
        } else {
            libc::SIGTERM
        };
        {
            let mut children = self.children();
            let Some(c) = children.get_mut(&id) else {
                return Ok(());
            };
            if c.observe() != Observation::Running {
                return Ok(());
            }
            c.signal(first);
        }
        let kill_at = Instant::now() + grace;
        let give_up = kill_at + KILL_WAIT;
        let mut killed = first == libc::SIGKILL;
        loop {
            tokio::time::sleep(POLL).await;
            let mut children = self.children();
            let Some(c) = children.get_mut(&id) else {
                return Ok(());
            };
            if c.observe() != Observation::Running {
                return Ok(());
            }
            let now = Instant::now();
            if now >= give_up {
                return Err(ProvisionError::Failed(format!(
                    "workspace process {id} did not exit after SIGKILL"
                )));
            }
            if !killed && now >= kill_at {
                tracing::warn!(workspace_id = %id, "process ignored SIGTERM; killing");
                c.signal(libc::SIGKILL);
                // Belt and braces if the group signal could not be sent.
                let _ = c.child.start_kill();
                killed = true;
            }
        }
    }

    fn child_env(extra: &[(String, String)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = INHERITED_ENV
            .iter()
            .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
            .collect();
        env.extend(extra.iter().cloned());
        env
    }
}

/// A free loopback port. Another process could take it before the child
/// binds it; the agent then fails to start and the governor sees it exit.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| ProvisionError::Failed(format!("no free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| ProvisionError::Failed(format!("no free port: {e}")))
}

#[async_trait]
impl Provisioner for LocalProvisioner {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn ensure(&self, spec: &WorkspaceSpec) -> Result<Started> {
        let id = spec.workspace_id;
        {
            let mut children = self.children();
            if let Some(c) = children.get_mut(&id) {
                if c.observe() == Observation::Running && c.generation == spec.generation {
                    return Ok(c.started(true));
                }
                // Exited, or a previous runtime: dropped, so killed.
                children.remove(&id);
            }
        }
        let configs = self.write_configs(id, &spec.config_files).await?;
        let work_dir = match &spec.workspace_dir {
            Some((dir, _)) => dir.clone(),
            None => self.workspace_dir(id),
        };
        // Checked here so that a spawn failing with "not found" can only
        // mean the program is missing.
        if !tokio::fs::metadata(&work_dir)
            .await
            .is_ok_and(|m| m.is_dir())
        {
            return Err(ProvisionError::Failed(format!(
                "workspace directory {} does not exist",
                work_dir.display()
            )));
        }
        self.remember_work_dir(id, Some(work_dir.clone()));
        let port = free_port()?;
        // Ours go last so a caller's PORT/AGENT_URL (meant for a container)
        // cannot point the agent at the wrong place.
        let mut env = spec.env.clone();
        let configs_text = configs.display().to_string();
        env.extend([
            ("PORT".to_string(), port.to_string()),
            ("MOLECULE_CONFIG_DIR".to_string(), configs_text.clone()),
            ("WORKSPACE_CONFIG_PATH".to_string(), configs_text),
            // A host name: the platform refuses IP-literal loopback URLs.
            ("AGENT_URL".to_string(), format!("http://localhost:{port}")),
        ]);
        let env = Self::child_env(&env);
        let mut child = Command::new(&spec.image)
            .current_dir(&work_dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ProvisionError::ImageMissing {
                    image: spec.image.clone(),
                    build_command: "cargo build -p molecule-agent".into(),
                },
                _ => ProvisionError::Failed(format!("spawn {}: {e}", spec.image)),
            })?;
        let log = SharedLog::default();
        if let Some(out) = child.stdout.take() {
            log.pump(out);
        }
        if let Some(err) = child.stderr.take() {
            log.pump(err);
        }
        let mut fresh = LocalChild {
            child,
            port,
            log,
            work_dir,
            env,
            generation: spec.generation.clone(),
        };
        let mut children = self.children();
        // A concurrent ensure of this start won the race: keep its process,
        // drop (kill) ours.
        if let Some(existing) = children.get_mut(&id)
            && existing.observe() == Observation::Running
            && existing.generation == spec.generation
        {
            fresh.signal(libc::SIGKILL);
            return Ok(existing.started(true));
        }
        let started = fresh.started(false);
        tracing::info!(workspace_id = %id, program = %spec.image, port, "started workspace process");
        children.insert(id, fresh);
        Ok(started)
    }

    async fn stop(&self, id: Uuid) -> Result<()> {
        self.terminate(id, self.stop_grace).await
    }

    async fn remove(&self, id: Uuid, volumes: bool) -> Result<()> {
        self.terminate(id, Duration::ZERO).await?;
        self.children().remove(&id);
        if volumes {
            self.remember_work_dir(id, None);
            let dir = self.workspace_dir(id);
            match tokio::fs::remove_dir_all(&dir).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ProvisionError::Failed(format!(
                        "remove {}: {e}",
                        dir.display()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn inspect(&self, id: Uuid) -> Observation {
        match self.children().get_mut(&id) {
            Some(c) => c.observe(),
            None => Observation::NotFound,
        }
    }

    async fn logs(&self, id: Uuid, tail: usize) -> Result<String> {
        let log = match self.children().get(&id) {
            Some(c) => c.log.clone(),
            None => return Err(ProvisionError::NotFound),
        };
        Ok(log.lock().tail(tail))
    }

    async fn log_stream(
        &self,
        id: Uuid,
        tail: usize,
        follow: bool,
    ) -> Result<tokio::sync::mpsc::Receiver<Vec<u8>>> {
        let log = match self.children().get(&id) {
            Some(c) => c.log.clone(),
            None => return Err(ProvisionError::NotFound),
        };
        if follow {
            return Ok(log.follow(tail));
        }
        let tail = log.lock().tail(tail);
        Ok(crate::one_chunk(tail))
    }

    async fn terminal(&self, id: Uuid, size: crate::TerminalSize) -> Result<crate::Terminal> {
        self.local_terminal(id, size).await
    }

    async fn exec(&self, id: Uuid, cmd: &[String], timeout: Duration) -> Result<ExecOutput> {
        let Some((program, args)) = cmd.split_first() else {
            return Err(ProvisionError::Failed("empty command".into()));
        };
        let (work_dir, env) = {
            let mut children = self.children();
            let c = children.get_mut(&id).ok_or(ProvisionError::NotFound)?;
            if c.observe() != Observation::Running {
                return Err(ProvisionError::Failed(format!(
                    "workspace {id} is not running"
                )));
            }
            (c.work_dir.clone(), c.env.clone())
        };
        let child = Command::new(program)
            .args(args)
            .current_dir(&work_dir)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ProvisionError::Failed(format!("exec {program}: {e}")))?;
        let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(out) => out.map_err(|e| ProvisionError::Failed(format!("exec {program}: {e}")))?,
            Err(_) => {
                return Err(ProvisionError::Failed(format!(
                    "command timed out after {timeout:?}"
                )));
            }
        };
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(ExecOutput {
            exit_code: exit_code(out.status),
            output,
        })
    }

    async fn list(&self) -> Result<Vec<(Uuid, Observation)>> {
        Ok(self
            .children()
            .iter_mut()
            .map(|(id, c)| (*id, c.observe()))
            .collect())
    }

    fn platform_listen_ip(&self) -> Option<std::net::IpAddr> {
        None
    }

    async fn list_files(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        depth: ListDepth,
    ) -> Result<Vec<FileEntry>> {
        self.local_list_files(id, root, path, depth).await
    }

    async fn read_file(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>> {
        self.local_read_file(id, root, path, max_bytes).await
    }

    async fn write_files(&self, id: Uuid, files: &[(String, Vec<u8>)]) -> Result<FileSource> {
        self.local_write_files(id, files).await
    }

    async fn delete_path(&self, id: Uuid, path: &str) -> Result<FileSource> {
        self.local_delete_path(id, path).await
    }
}
