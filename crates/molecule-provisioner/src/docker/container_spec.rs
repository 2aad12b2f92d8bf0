//! What a workspace container looks like: names, tiers (resource limits and
//! privileges), mounts, networking, and the tar archive that carries the
//! config files into `/configs`. Pure functions only, so every tier is
//! table-tested without a daemon; talking to Docker is `docker/mod.rs`'s job.

use crate::files::relative_path;
use crate::{
    AGENT_PORT, DirAccess, LABEL_GENERATION, LABEL_HELPER_FOR, LABEL_INSTANCE, LABEL_MANAGED,
    LABEL_WORKSPACE, WorkspaceSpec,
};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding, PortMap,
    RestartPolicy, RestartPolicyNameEnum,
};
use molecule_types::container_name;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// Where the config volume is mounted inside the container.
pub const CONFIGS_PATH: &str = "/configs";
/// The agent binary in the agent image; files helpers run its `fs-rm`.
pub const AGENT_BINARY: &str = "/molecule-agent";
/// Where claude-code workspaces keep their sessions volume.
pub const SESSIONS_PATH: &str = "/root/.claude/sessions";
const MIB: i64 = 1024 * 1024;
const SHARES_PER_CPU: i64 = 1024;
const NANO_CPUS_PER_CPU: i64 = 1_000_000_000;

/// Name of the workspace's config volume, `ws-<id12>-configs`.
pub fn configs_volume(id: Uuid) -> String {
    format!("{}-configs", container_name(id))
}

/// Name of the claude-code session volume, `ws-<id12>-claude-sessions`.
pub fn sessions_volume(id: Uuid) -> String {
    format!("{}-claude-sessions", container_name(id))
}

/// The labels every managed container and volume carries.
pub fn labels(id: Uuid, instance: Option<&str>) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL_WORKSPACE.to_string(), id.to_string()),
        (LABEL_MANAGED.to_string(), "true".to_string()),
    ]);
    if let Some(i) = instance {
        l.insert(LABEL_INSTANCE.to_string(), i.to_string());
    }
    l
}

/// The labels of a files helper container: managed and owned like the
/// workspace's objects, but without the workspace label.
pub fn helper_labels(id: Uuid, instance: Option<&str>) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL_HELPER_FOR.to_string(), id.to_string()),
        (LABEL_MANAGED.to_string(), "true".to_string()),
    ]);
    if let Some(i) = instance {
        l.insert(LABEL_INSTANCE.to_string(), i.to_string());
    }
    l
}

/// A fresh name for a files helper, `ws-<id12>-files-<random8>`: unique, so
/// concurrent file operations never collide, and next to the volume's name
/// for whoever reads `docker ps -a`.
pub(crate) fn helper_name(id: Uuid) -> String {
    let nonce = Uuid::new_v4().simple().to_string();
    format!("{}-files-{}", container_name(id), &nonce[..8])
}

/// The create request for a files helper: the utility image (which holds
/// `/molecule-agent`) with the workspace's config volume at `/configs`, no
/// network, a read-only root and a small memory cap. `args` are
/// `molecule-agent`'s; helpers that only serve the archive API are never
/// started, so theirs are `--version`.
pub(crate) fn helper_body(
    id: Uuid,
    image: &str,
    args: Vec<String>,
    instance: Option<&str>,
) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![AGENT_BINARY.to_string()]),
        cmd: Some(args),
        labels: Some(helper_labels(id, instance)),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:{CONFIGS_PATH}", configs_volume(id))]),
            network_mode: Some("none".into()),
            readonly_rootfs: Some(true),
            memory: Some(64 * MIB),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The label marking networks Molecule created.
pub(crate) fn labels_managed() -> HashMap<String, String> {
    HashMap::from([(LABEL_MANAGED.to_string(), "true".to_string())])
}

/// Memory and CPU of one limited tier. CPU is counted in shares, 1024 = one
/// CPU, and applied as a NanoCPUs hard cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierLimit {
    pub memory_mb: i64,
    pub cpu_shares: i64,
}

/// Limits of tiers 2–4 (tier 1 has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierLimits {
    pub t2: TierLimit,
    pub t3: TierLimit,
    pub t4: TierLimit,
}

impl Default for TierLimits {
    fn default() -> Self {
        let limit = |memory_mb, cpus| TierLimit {
            memory_mb,
            cpu_shares: cpus * SHARES_PER_CPU,
        };
        Self {
            t2: limit(512, 1),
            t3: limit(2048, 2),
            t4: limit(4096, 4),
        }
    }
}

impl TierLimits {
    fn for_tier(&self, tier: Tier) -> Option<TierLimit> {
        match tier {
            Tier::T1 => None,
            Tier::T2 => Some(self.t2),
            Tier::T3 => Some(self.t3),
            Tier::T4 => Some(self.t4),
        }
    }
}

/// A workspace tier; 0 and unknown numbers get tier-2 treatment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    T1,
    T2,
    T3,
    T4,
}

impl Tier {
    pub(crate) fn from_number(n: i32) -> Self {
        match n {
            1 => Self::T1,
            3 => Self::T3,
            4 => Self::T4,
            _ => Self::T2,
        }
    }

    pub(crate) fn number(self) -> i32 {
        match self {
            Self::T1 => 1,
            Self::T2 => 2,
            Self::T3 => 3,
            Self::T4 => 4,
        }
    }

    /// Tier 4 shares the host's network namespace: no port publishing, no
    /// network alias, the agent listens on the host's port 8000.
    pub(crate) fn host_network(self) -> bool {
        self == Self::T4
    }
}

/// Everything besides the spec that shapes the container.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement<'a> {
    pub network: &'a str,
    pub limits: &'a TierLimits,
    /// The daemon's CPU count: Docker rejects a NanoCPUs cap above it, so a
    /// 4-CPU tier on a 2-core host is capped at 2.
    pub host_cpus: Option<i64>,
    /// Value of the `molecule.instance` label, when set.
    pub instance: Option<&'a str>,
}

/// claude-code keeps its sessions in a volume of their own so they survive
/// a recreated container; tier 1 gets no volume besides its config.
pub(crate) fn needs_sessions_volume(spec: &WorkspaceSpec) -> bool {
    spec.runtime == "claude-code" && Tier::from_number(spec.tier) != Tier::T1
}

/// The create request for a workspace container.
pub(crate) fn create_body(spec: &WorkspaceSpec, place: Placement<'_>) -> ContainerCreateBody {
    let name = container_name(spec.workspace_id);
    let tier = Tier::from_number(spec.tier);
    let port_key = format!("{AGENT_PORT}/tcp");
    let mut binds = vec![format!(
        "{}:{CONFIGS_PATH}",
        configs_volume(spec.workspace_id)
    )];
    // Tier 1 sees its config and nothing else of the host.
    if tier != Tier::T1
        && let Some((dir, access)) = &spec.workspace_dir
    {
        let suffix = match access {
            DirAccess::ReadOnly => ":ro",
            DirAccess::ReadWrite => "",
        };
        binds.push(format!("{}:/workspace{suffix}", dir.display()));
    }
    if needs_sessions_volume(spec) {
        binds.push(format!(
            "{}:{SESSIONS_PATH}",
            sessions_volume(spec.workspace_id)
        ));
    }
    if tier == Tier::T4 {
        binds.push("/var/run/docker.sock:/var/run/docker.sock".into());
    }
    let mut host = HostConfig {
        binds: Some(binds),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        extra_hosts: Some(vec!["host.docker.internal:host-gateway".into()]),
        ..Default::default()
    };
    if let Some(limit) = place.limits.for_tier(tier) {
        let mut nano = limit.cpu_shares * NANO_CPUS_PER_CPU / SHARES_PER_CPU;
        if let Some(cpus) = place.host_cpus.filter(|c| *c > 0) {
            nano = nano.min(cpus * NANO_CPUS_PER_CPU);
        }
        host.memory = Some(limit.memory_mb * MIB);
        host.nano_cpus = Some(nano);
    }
    match tier {
        Tier::T1 => {
            host.readonly_rootfs = Some(true);
            host.tmpfs = Some(HashMap::from([(
                "/tmp".to_string(),
                "rw,noexec,nosuid,size=64m".to_string(),
            )]));
        }
        Tier::T2 => {}
        Tier::T3 | Tier::T4 => {
            host.privileged = Some(true);
            host.pid_mode = Some("host".into());
        }
    }
    let mut labels = labels(spec.workspace_id, place.instance);
    labels.insert(LABEL_GENERATION.to_string(), spec.generation.clone());
    let mut body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: Some(vec![port_key.clone()]),
        ..Default::default()
    };
    if tier.host_network() {
        host.network_mode = Some("host".into());
    } else {
        body.hostname = Some(name.clone());
        host.network_mode = Some(place.network.to_string());
        host.port_bindings = Some(HashMap::from([(
            port_key,
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(String::new()),
            }]),
        )]));
        body.networking_config = Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                place.network.to_string(),
                EndpointSettings {
                    aliases: Some(vec![name]),
                    ..Default::default()
                },
            )])),
        });
    }
    body.host_config = Some(host);
    body
}

/// The host port Docker published for the agent port, preferring the
/// loopback binding.
pub(crate) fn published_port(ports: &PortMap) -> Option<u16> {
    let bindings = ports.get(&format!("{AGENT_PORT}/tcp"))?.as_ref()?;
    let port_of = |b: &PortBinding| b.host_port.as_deref()?.parse::<u16>().ok();
    bindings
        .iter()
        .filter(|b| b.host_ip.as_deref() == Some("127.0.0.1"))
        .find_map(port_of)
        .or_else(|| bindings.iter().find_map(port_of))
        .filter(|p| *p != 0)
}

/// A tar archive (uncompressed) of the config files, relative to
/// `/configs`: directories 0755, files 0644. Paths must stay inside.
pub(crate) fn config_archive(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs = BTreeSet::new();
    for (path, contents) in files {
        let rel = relative_path(path)?;
        let mut parent = String::new();
        for component in rel.iter().take(rel.len().saturating_sub(1)) {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(component);
            if dirs.insert(parent.clone()) {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{parent}/"), std::io::empty())
                    .map_err(|e| format!("config archive: {e}"))?;
            }
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(contents.len() as u64);
        builder
            .append_data(&mut header, rel.join("/"), contents.as_slice())
            .map_err(|e| format!("config archive: {e}"))?;
    }
    builder
        .into_inner()
        .map_err(|e| format!("config archive: {e}"))
}

#[cfg(test)]
mod tests;
