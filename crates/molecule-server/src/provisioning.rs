//! Choosing the runtime backend at start-up (`MOLECULE_PROVISIONER`):
//! Docker when an engine answers, else local child processes when the
//! `molecule-agent` program is found, else none. The choice is logged.

use anyhow::Context;
use molecule_provisioner::Provisioner;
use molecule_provisioner::docker::{DockerOptions, DockerProvisioner};
use molecule_provisioner::local::LocalProvisioner;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Config, ProvisionerChoice};

/// Where the local backend finds `molecule-agent`: the configured path, next
/// to the running executable, or on PATH.
pub fn find_agent_program(config: &Config) -> Option<PathBuf> {
    if let Some(p) = &config.agent_program {
        return Some(p.clone());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    for candidate in [dir.join("molecule-agent"), dir.join("../molecule-agent")] {
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("molecule-agent"))
            .find(|p| p.is_file())
    })
}

/// Docker options: tier limits from the environment, and an owner label
/// derived from the database, so two platforms sharing one engine (or two
/// test servers) never reap each other's containers.
/// The `molecule.instance` label of everything this platform's Docker
/// backend creates: one per database, so platforms sharing an engine never
/// touch each other's objects.
pub fn instance_label(config: &Config) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(config.database.store_url().as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn docker_options(config: &Config) -> DockerOptions {
    let instance = instance_label(config);
    DockerOptions {
        host: config.docker_host.clone(),
        call_timeout: config.docker_call_timeout,
        tier_limits: config.tier_limits,
        instance: Some(instance),
        // File operations on a workspace whose container is gone run in a
        // short-lived container of the agent image (it has `fs-rm`).
        utility_image: config.agent_image.clone(),
        ..DockerOptions::default()
    }
}

pub async fn select(config: &Config) -> anyhow::Result<Option<Arc<dyn Provisioner>>> {
    let local = |config: &Config| -> anyhow::Result<Arc<dyn Provisioner>> {
        let program = find_agent_program(config).context(
            "the local backend needs the molecule-agent program (set MOLECULE_AGENT_BIN)",
        )?;
        tracing::info!(program = %program.display(), "provisioner: local processes");
        Ok(Arc::new(LocalProvisioner::new(config.data_dir.clone())))
    };
    match config.provisioner {
        ProvisionerChoice::None => {
            tracing::info!(
                "provisioner: none (workspaces wait for agents to register by themselves)"
            );
            Ok(None)
        }
        ProvisionerChoice::Docker => {
            let d = DockerProvisioner::connect(docker_options(config))
                .await
                .context("MOLECULE_PROVISIONER=docker but the Docker engine does not answer")?;
            tracing::info!("provisioner: docker");
            Ok(Some(Arc::new(d)))
        }
        ProvisionerChoice::Local => local(config).map(Some),
        ProvisionerChoice::Auto => match DockerProvisioner::connect(docker_options(config)).await {
            Ok(d) => {
                tracing::info!("provisioner: docker (engine answered)");
                Ok(Some(Arc::new(d)))
            }
            Err(e) => {
                tracing::info!(error = %e, "no Docker engine; trying local processes");
                match local(config) {
                    Ok(p) => Ok(Some(p)),
                    Err(e) => {
                        tracing::warn!(error = %e, "provisioner: none");
                        Ok(None)
                    }
                }
            }
        },
    }
}
