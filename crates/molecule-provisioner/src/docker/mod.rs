//! The Docker backend: one container per workspace, named `ws-<id12>` and
//! labelled `molecule.workspace_id`, so a restarted platform adopts what is
//! running. It observes and acts; it never decides to restart (the server's
//! governor does), never pulls images, and never logs environment values.
//! Every Docker call runs under its own deadline, and every failure that is
//! not a definite answer surfaces as `Unavailable`/`Unknown`. A workspace's
//! files go through the archive API (`files.rs`, with `helper.rs` when the
//! container is gone), never a shell; `exec.rs` runs programs and reads logs.

mod connect;
pub(crate) mod container_spec;
mod exec;
mod file_archive;
mod files;
mod helper;
mod observe;
mod terminal;

pub use connect::DEFAULT_DOCKER_SOCKET;
pub use container_spec::{
    AGENT_BINARY, CONFIGS_PATH, SESSIONS_PATH, TierLimit, TierLimits, configs_volume,
    sessions_volume,
};

use crate::{
    AGENT_PORT, ExecOutput, FileEntry, FileRoot, FileSource, LABEL_GENERATION, LABEL_HELPER_FOR,
    LABEL_INSTANCE, LABEL_MANAGED, LABEL_WORKSPACE, ListDepth, Observation, ProvisionError,
    Provisioner, Result, Started, Terminal, TerminalSize, WorkspaceSpec,
};
use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{ContainerInspectResponse, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptions, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use connect::call_with;
use container_spec::{
    Placement, Tier, config_archive, create_body, labels, needs_sessions_volume, published_port,
};
use molecule_types::container_name;
use observe::{CallError, InspectFacts, observe, observe_listed};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;
use uuid::Uuid;

/// Network workspaces join unless configured otherwise.
pub const DEFAULT_NETWORK: &str = "molecule-net";
/// What to run when the agent image is missing.
pub const BUILD_COMMAND: &str = "cargo xtask image";
/// The agent image `cargo xtask image` builds for this version.
pub const DEFAULT_UTILITY_IMAGE: &str = concat!("molecule/agent:", env!("CARGO_PKG_VERSION"));

/// How to reach and use the engine.
#[derive(Debug, Clone)]
pub struct DockerOptions {
    /// Engine endpoint (`unix://…`, a socket path or `tcp://…`); `None`
    /// reads `DOCKER_HOST`, else the local socket.
    pub host: Option<String>,
    /// Bridge network the workspaces join (created if missing).
    pub network: String,
    /// Deadline of every single Docker call.
    pub call_timeout: Duration,
    /// How long `stop` lets the agent shut down before it is killed.
    pub stop_grace: Duration,
    pub tier_limits: TierLimits,
    /// Owner label (`molecule.instance`) put on every container and volume;
    /// `list` only returns objects carrying it.
    pub instance: Option<String>,
    /// The agent image (it must hold `/molecule-agent`) that files helpers
    /// run, when a workspace's container is gone or its own image has no
    /// agent binary. Like every image, it is never pulled.
    pub utility_image: String,
    /// Age after which a files helper container counts as left behind by a
    /// platform that stopped mid-operation; `list` removes such helpers.
    pub stale_helper_after: Duration,
}

impl Default for DockerOptions {
    fn default() -> Self {
        Self {
            host: None,
            network: DEFAULT_NETWORK.into(),
            call_timeout: Duration::from_secs(10),
            stop_grace: Duration::from_secs(5),
            tier_limits: TierLimits::default(),
            instance: None,
            utility_image: DEFAULT_UTILITY_IMAGE.into(),
            stale_helper_after: Duration::from_secs(600),
        }
    }
}

/// Workspaces as Docker containers.
pub struct DockerProvisioner {
    docker: Docker,
    opts: DockerOptions,
    gateway: Option<IpAddr>,
    host_cpus: Option<i64>,
}

impl DockerProvisioner {
    /// Connect to the engine, negotiate the API version and ensure the
    /// network. Fails with `Unavailable` at once when there is no engine.
    pub async fn connect(opts: DockerOptions) -> Result<Self> {
        let engine = connect::connect(&opts).await?;
        Ok(Self {
            docker: engine.docker,
            opts,
            gateway: engine.gateway,
            host_cpus: engine.host_cpus,
        })
    }

    async fn call<T>(
        &self,
        call: &'static str,
        fut: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, CallError> {
        call_with(self.opts.call_timeout, call, fut).await
    }

    async fn inspect_container(&self, name: &str) -> Result<ContainerInspectResponse, CallError> {
        self.call(
            "inspect_container",
            self.docker.inspect_container(name, None),
        )
        .await
    }

    /// Files helpers live for one operation; one older than
    /// `stale_helper_after` was left by a platform that stopped mid-operation.
    /// Removed best effort while listing (at start-up, for adoption).
    async fn sweep_stale_helpers(&self, listed: &[bollard::models::ContainerSummary]) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        for c in listed {
            let is_helper = c
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(LABEL_HELPER_FOR));
            let old = c
                .created
                .is_some_and(|t| now - t >= self.opts.stale_helper_after.as_secs() as i64);
            let name = c
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string());
            if let (true, true, Some(name)) = (is_helper, old, name) {
                match self.remove_container(&name).await {
                    Ok(()) => {
                        tracing::info!(container = %name, "removed a files helper left behind")
                    }
                    Err(e) => {
                        tracing::warn!(container = %name, error = %e, "could not remove a files helper left behind")
                    }
                }
            }
        }
    }

    /// Force-remove a container; absent is success.
    async fn remove_container(&self, name: &str) -> Result<()> {
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        match self
            .call(
                "remove_container",
                self.docker.remove_container(name, Some(opts)),
            )
            .await
        {
            // Another removal of the same container is under way (a restart
            // racing a pause, say, or the removal of a previous runtime
            // whose answer was lost): wait for it to finish rather than fail.
            Err(e) if e.status() == Some(409) => self.wait_gone(name).await,
            Err(e) if !e.is_not_found() => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Poll until the container no longer exists, within one call timeout.
    async fn wait_gone(&self, name: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.opts.call_timeout;
        loop {
            match self.inspect_container(name).await {
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e.into()),
                Ok(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(ProvisionError::Unavailable(format!(
                        "container {name} is still being removed"
                    )));
                }
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    async fn remove_volume(&self, volume: &str) -> Result<()> {
        let opts = None::<RemoveVolumeOptions>;
        match self
            .call("remove_volume", self.docker.remove_volume(volume, opts))
            .await
        {
            Err(e) if !e.is_not_found() => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// The image must already be local: it is never pulled.
    async fn require_image(&self, image: &str) -> Result<()> {
        match self
            .call("inspect_image", self.docker.inspect_image(image))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Err(image_missing(image)),
            Err(e) => Err(e.into()),
        }
    }

    /// Create the volume, upload the config files, start. The caller removes
    /// the container when this fails, so a retry starts clean.
    async fn create_and_start(&self, spec: &WorkspaceSpec, name: &str) -> Result<()> {
        let id = spec.workspace_id;
        let mut volumes = vec![configs_volume(id)];
        if needs_sessions_volume(spec) {
            volumes.push(sessions_volume(id));
        }
        for volume in volumes {
            let request = VolumeCreateRequest {
                name: Some(volume),
                labels: Some(labels(id, self.opts.instance.as_deref())),
                ..Default::default()
            };
            self.call("create_volume", self.docker.create_volume(request))
                .await?;
        }
        let body = create_body(
            spec,
            Placement {
                network: &self.opts.network,
                limits: &self.opts.tier_limits,
                host_cpus: self.host_cpus,
                instance: self.opts.instance.as_deref(),
            },
        );
        let opts = CreateContainerOptionsBuilder::default().name(name).build();
        match self
            .call(
                "create_container",
                self.docker.create_container(Some(opts), body),
            )
            .await
        {
            Ok(_) => {}
            // The image vanished between the check and the create.
            Err(e) if e.is_not_found() => return Err(image_missing(&spec.image)),
            Err(e) => return Err(e.into()),
        }
        // Files go in before the start so the agent never sees a half-written
        // /configs; /configs is a volume, so this works on a read-only rootfs.
        if !spec.config_files.is_empty() {
            let archive = config_archive(&spec.config_files).map_err(ProvisionError::Failed)?;
            let opts = UploadToContainerOptionsBuilder::default()
                .path(CONFIGS_PATH)
                .build();
            let body = bollard::body_full(archive.into());
            self.call(
                "upload_to_container",
                self.docker.upload_to_container(name, Some(opts), body),
            )
            .await?;
        }
        self.call("start_container", self.docker.start_container(name, None))
            .await?;
        Ok(())
    }

    /// Where a running container is reached, from its inspect answer.
    fn started_from(c: &ContainerInspectResponse, name: &str, adopted: bool) -> Option<Started> {
        let host_network = c
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.as_deref())
            == Some("host");
        if host_network {
            return Some(Started {
                url: format!("http://127.0.0.1:{AGENT_PORT}"),
                internal_url: None,
                adopted,
            });
        }
        let ports = c.network_settings.as_ref()?.ports.as_ref()?;
        let port = published_port(ports)?;
        Some(Started {
            url: format!("http://127.0.0.1:{port}"),
            internal_url: Some(format!("http://{name}:{AGENT_PORT}")),
            adopted,
        })
    }

    /// Read the published port back after a start. A container that already
    /// stopped is an error, and it is kept so its logs can be read.
    async fn read_back(&self, name: &str) -> Result<Started> {
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let c = self.inspect_container(name).await?;
            if let obs @ Observation::Exited { .. } = observe(facts_of(&c)) {
                return Err(ProvisionError::Failed(format!(
                    "container {name} stopped right after start: {obs:?}"
                )));
            }
            if let Some(started) = Self::started_from(&c, name, false) {
                return Ok(started);
            }
        }
        Err(ProvisionError::Failed(format!(
            "container {name} started but Docker reports no published port for {AGENT_PORT}/tcp"
        )))
    }
}

fn image_missing(image: &str) -> ProvisionError {
    ProvisionError::ImageMissing {
        image: image.to_string(),
        build_command: BUILD_COMMAND.to_string(),
    }
}

fn facts_of(c: &ContainerInspectResponse) -> InspectFacts {
    match &c.state {
        Some(s) => InspectFacts::Found {
            running: s.running.unwrap_or(false),
            paused: s.paused.unwrap_or(false),
            exit_code: s.exit_code,
        },
        None => InspectFacts::FoundWithoutState,
    }
}

fn owner_of(c: &ContainerInspectResponse) -> Option<&str> {
    label_of(c, LABEL_WORKSPACE)
}

fn label_of<'a>(c: &'a ContainerInspectResponse, label: &str) -> Option<&'a str> {
    c.config
        .as_ref()?
        .labels
        .as_ref()?
        .get(label)
        .map(String::as_str)
}

#[async_trait]
impl Provisioner for DockerProvisioner {
    fn kind(&self) -> &'static str {
        "docker"
    }

    async fn ensure(&self, spec: &WorkspaceSpec) -> Result<Started> {
        let id = spec.workspace_id;
        let name = container_name(id);
        match self.inspect_container(&name).await {
            Ok(c) => {
                // The name is ours by convention, but never replace a
                // container that does not say it belongs to this workspace.
                if owner_of(&c) != Some(id.to_string().as_str()) {
                    return Err(ProvisionError::Failed(format!(
                        "container {name} exists without label {LABEL_WORKSPACE}={id}; not replacing it"
                    )));
                }
                if observe(facts_of(&c)) == Observation::Running {
                    let generation = label_of(&c, LABEL_GENERATION);
                    if generation != Some(spec.generation.as_str()) {
                        // The previous runtime: its removal (a restart's,
                        // perhaps by another replica) is under way or its
                        // answer was lost. Never the new runtime.
                        tracing::info!(workspace_id = %id, container = %name, generation = generation.unwrap_or("none"), "a previous runtime still runs; replacing it");
                    } else if let Some(started) = Self::started_from(&c, &name, true) {
                        tracing::info!(workspace_id = %id, container = %name, url = %started.url, "adopted running container");
                        return Ok(started);
                    } else {
                        tracing::warn!(workspace_id = %id, container = %name, "running container has no published port; recreating");
                    }
                }
                self.remove_container(&name).await?;
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        self.require_image(&spec.image).await?;
        if let Err(e) = self.create_and_start(spec, &name).await {
            // A lost or late answer says nothing about the container: the
            // daemon may well have started it. Look before tearing down, and
            // never remove what we cannot see.
            if let ProvisionError::Unavailable(_) = e {
                match self.inspect_container(&name).await {
                    Ok(c) if observe(facts_of(&c)) == Observation::Running => {
                        if let Some(started) = Self::started_from(&c, &name, false) {
                            tracing::warn!(workspace_id = %id, container = %name, error = %e, "start answer lost but the container runs; keeping it");
                            return Ok(started);
                        }
                    }
                    Ok(_) => {}
                    Err(inspect) if inspect.is_not_found() => return Err(e),
                    Err(_) => return Err(e),
                }
            }
            if let Err(cleanup) = self.remove_container(&name).await {
                tracing::warn!(workspace_id = %id, container = %name, error = %cleanup, "could not remove half-created container");
            }
            return Err(e);
        }
        let started = self.read_back(&name).await?;
        tracing::info!(
            workspace_id = %id,
            container = %name,
            image = %spec.image,
            tier = Tier::from_number(spec.tier).number(),
            url = %started.url,
            "started workspace container"
        );
        Ok(started)
    }

    async fn stop(&self, id: Uuid) -> Result<()> {
        let name = container_name(id);
        let grace = self.opts.stop_grace;
        let opts = StopContainerOptionsBuilder::default()
            .t(i32::try_from(grace.as_secs()).unwrap_or(i32::MAX))
            .build();
        let stopped = call_with(
            self.opts.call_timeout + grace,
            "stop_container",
            self.docker.stop_container(&name, Some(opts)),
        )
        .await;
        match stopped {
            Ok(()) => return Ok(()),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => {
                tracing::warn!(workspace_id = %id, container = %name, error = %e.text(), "graceful stop failed; killing");
            }
        }
        match self
            .call("kill_container", self.docker.kill_container(&name, None))
            .await
        {
            // 409: not running, which is what we wanted.
            Err(e) if !(e.is_not_found() || e.status() == Some(409)) => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn remove(&self, id: Uuid, volumes: bool) -> Result<()> {
        self.remove_container(&container_name(id)).await?;
        if volumes {
            self.remove_volume(&configs_volume(id)).await?;
            self.remove_volume(&sessions_volume(id)).await?;
        }
        Ok(())
    }

    async fn inspect(&self, id: Uuid) -> Observation {
        match self.inspect_container(&container_name(id)).await {
            Ok(c) => observe(facts_of(&c)),
            Err(e) => {
                let obs = observe(InspectFacts::from_error(&e));
                if let Observation::Unknown(error) = &obs {
                    tracing::warn!(workspace_id = %id, %error, "container inspect failed; state unknown");
                }
                obs
            }
        }
    }

    async fn logs(&self, id: Uuid, tail: usize) -> Result<String> {
        self.container_logs(&container_name(id), tail).await
    }

    async fn log_stream(
        &self,
        id: Uuid,
        tail: usize,
        follow: bool,
    ) -> Result<tokio::sync::mpsc::Receiver<Vec<u8>>> {
        if !follow {
            return Ok(crate::one_chunk(self.logs(id, tail).await?));
        }
        match self.inspect(id).await {
            Observation::NotFound => return Err(ProvisionError::NotFound),
            Observation::Unknown(e) => return Err(ProvisionError::Unavailable(e)),
            _ => {}
        }
        Ok(self.follow_container_logs(&container_name(id), tail))
    }

    async fn exec(&self, id: Uuid, cmd: &[String], timeout: Duration) -> Result<ExecOutput> {
        self.exec_in(&container_name(id), cmd, timeout).await
    }

    async fn terminal(&self, id: Uuid, size: TerminalSize) -> Result<Terminal> {
        self.docker_terminal(id, size).await
    }

    async fn list(&self) -> Result<Vec<(Uuid, Observation)>> {
        let mut wanted = vec![format!("{LABEL_MANAGED}=true")];
        if let Some(i) = &self.opts.instance {
            wanted.push(format!("{LABEL_INSTANCE}={i}"));
        }
        let filters = HashMap::from([("label", wanted)]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .call("list_containers", self.docker.list_containers(Some(opts)))
            .await?;
        self.sweep_stale_helpers(&containers).await;
        Ok(containers
            .into_iter()
            .filter_map(|c| {
                let id = c.labels.as_ref()?.get(LABEL_WORKSPACE)?.parse().ok()?;
                Some((id, observe_listed(c.state, c.status.as_deref())))
            })
            .collect())
    }

    fn platform_listen_ip(&self) -> Option<IpAddr> {
        self.gateway
    }

    async fn list_files(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        depth: ListDepth,
    ) -> Result<Vec<FileEntry>> {
        self.docker_list_files(id, root, path, depth).await
    }

    async fn read_file(
        &self,
        id: Uuid,
        root: FileRoot,
        path: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>> {
        self.docker_read_file(id, root, path, max_bytes).await
    }

    async fn write_files(&self, id: Uuid, files: &[(String, Vec<u8>)]) -> Result<FileSource> {
        self.docker_write_files(id, files).await
    }

    async fn delete_path(&self, id: Uuid, path: &str) -> Result<FileSource> {
        self.docker_delete_path(id, path).await
    }
}
