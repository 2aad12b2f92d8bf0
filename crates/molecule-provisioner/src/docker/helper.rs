//! Short-lived helper containers on a workspace's config volume, for file
//! operations when the workspace's own container is gone or its image has
//! no `/molecule-agent`. A helper runs the utility image (never pulled),
//! carries `molecule.helper_for=<id>` but never the workspace label, is
//! used unstarted for the archive API or run once for `fs-rm`, and is
//! removed as soon as its operation is decided. What the operations do is
//! `files.rs`'s business.

use super::DockerProvisioner;
use super::container_spec::{configs_volume, helper_body, helper_name};
use super::image_missing;
use super::observe::CallError;
use crate::{ProvisionError, Result};
use bollard::Docker;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use std::time::Duration;
use uuid::Uuid;

/// A helper container that must not outlive its operation. Release it with
/// [`DockerProvisioner::release`]; if it is dropped unreleased (the request
/// was cancelled, or something panicked), Drop cannot await, so it removes
/// the container from a one-shot background task rather than leak it.
pub(super) struct Helper {
    pub(super) name: String,
    cleanup: Option<(Docker, Duration)>,
}

impl Helper {
    fn disarm(mut self) -> String {
        self.cleanup = None;
        std::mem::take(&mut self.name)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let Some((docker, timeout)) = self.cleanup.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(container = %self.name, "files helper dropped outside a runtime; left behind");
            return;
        };
        let name = std::mem::take(&mut self.name);
        runtime.spawn(async move {
            let opts = RemoveContainerOptionsBuilder::default().force(true).build();
            let removed = tokio::time::timeout(timeout, docker.remove_container(&name, Some(opts)));
            if !matches!(removed.await, Ok(Ok(()))) {
                tracing::warn!(container = %name, "could not remove an abandoned files helper");
            }
        });
    }
}

impl DockerProvisioner {
    /// Whether the workspace's config volume exists.
    pub(super) async fn volume_exists(&self, id: Uuid) -> Result<bool> {
        let volume = configs_volume(id);
        match self
            .call("inspect_volume", self.docker.inspect_volume(&volume))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Create (not start) a helper on the workspace's config volume. The
    /// utility image must be local: it is never pulled. (The bind would
    /// recreate a volume removed since it was looked up; such an empty
    /// volume is what `remove` with volumes cleans up anyway.)
    pub(super) async fn create_helper(&self, id: Uuid, args: Vec<String>) -> Result<Helper> {
        let image = &self.opts.utility_image;
        let helper = Helper {
            name: helper_name(id),
            cleanup: Some((self.docker.clone(), self.opts.call_timeout)),
        };
        let body = helper_body(id, image, args, self.opts.instance.as_deref());
        let opts = CreateContainerOptionsBuilder::default()
            .name(&helper.name)
            .build();
        let created = self
            .call(
                "create_container",
                self.docker.create_container(Some(opts), body),
            )
            .await;
        match created {
            Ok(_) => {
                tracing::debug!(workspace_id = %id, container = %helper.name, %image, "created files helper");
                Ok(helper)
            }
            Err(e) => {
                // A lost answer may still have created it.
                self.release(helper).await;
                if e.is_not_found() {
                    Err(image_missing(image))
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// Remove a helper now; a failure is logged, not returned, because the
    /// operation itself is already decided.
    pub(super) async fn release(&self, helper: Helper) {
        let name = helper.disarm();
        if let Err(e) = self.remove_container(&name).await {
            tracing::warn!(container = %name, error = %e, "could not remove files helper");
        }
    }

    /// Start the helper and wait for it to exit; its exit code.
    pub(super) async fn run_to_exit(&self, helper: &str) -> Result<i64> {
        self.call("start_container", self.docker.start_container(helper, None))
            .await?;
        let opts = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut waiting = self.docker.wait_container(helper, Some(opts));
        match self
            .call("wait_container", async { waiting.next().await.transpose() })
            .await
        {
            Ok(Some(answer)) => Ok(answer.status_code),
            Ok(None) => Err(ProvisionError::Unavailable(format!(
                "docker wait_container on {helper} ended without an answer"
            ))),
            // bollard reports a non-zero exit as an error.
            Err(CallError::Docker(bollard::errors::Error::DockerContainerWaitError {
                code,
                ..
            })) => Ok(code),
            Err(e) => Err(e.into()),
        }
    }
}
