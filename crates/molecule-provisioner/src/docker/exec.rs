//! Programs and their output in a container: `exec` with its exit code,
//! and the tail of a container's logs. The workspace-level methods in
//! `docker/mod.rs` and the files helpers use these.

use super::DockerProvisioner;
use super::observe::CallError;
use crate::{ExecOutput, ProvisionError, Result};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use std::time::Duration;

impl DockerProvisioner {
    /// Run a command in a running container; its output and exit code.
    pub(super) async fn exec_in(
        &self,
        name: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let config = CreateExecOptions {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let created = self
            .call("create_exec", self.docker.create_exec(name, config))
            .await?;
        let started = self
            .call("start_exec", self.docker.start_exec(&created.id, None))
            .await?;
        let StartExecResults::Attached { mut output, .. } = started else {
            return Err(ProvisionError::Failed("exec started detached".into()));
        };
        let collect = async {
            let mut out = Vec::new();
            while let Some(chunk) = output.next().await {
                out.extend_from_slice(&chunk?.into_bytes());
            }
            Ok::<_, bollard::errors::Error>(out)
        };
        let bytes = match tokio::time::timeout(timeout, collect).await {
            Ok(result) => result.map_err(|e| ProvisionError::from(CallError::Docker(e)))?,
            Err(_) => {
                return Err(ProvisionError::Failed(format!(
                    "command timed out after {timeout:?}"
                )));
            }
        };
        // The exit code lands a moment after the output stream closes.
        let mut exit_code = None;
        for attempt in 0..20 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let info = self
                .call("inspect_exec", self.docker.inspect_exec(&created.id))
                .await?;
            exit_code = info.exit_code;
            if info.running != Some(true) {
                break;
            }
        }
        Ok(ExecOutput {
            exit_code,
            output: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// The last `tail` lines of a container's stdout and stderr.
    pub(super) async fn container_logs(&self, name: &str, tail: usize) -> Result<String> {
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&tail.to_string())
            .build();
        let mut stream = self.docker.logs(name, Some(opts));
        let collect = async {
            let mut out = Vec::new();
            while let Some(chunk) = stream.next().await {
                out.extend_from_slice(&chunk?.into_bytes());
            }
            Ok(out)
        };
        let bytes = self.call("logs", collect).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The tail of a container's logs, then its output as it comes, until
    /// the container stops or the receiver is dropped.
    pub(super) fn follow_container_logs(
        &self,
        name: &str,
        tail: usize,
    ) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(true)
            .tail(&tail.to_string())
            .build();
        let docker = self.docker.clone();
        let name = name.to_string();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut stream = docker.logs(&name, Some(opts));
            loop {
                let chunk = tokio::select! {
                    c = stream.next() => c,
                    () = tx.closed() => return,
                };
                match chunk {
                    Some(Ok(out)) => {
                        if tx.send(out.into_bytes().to_vec()).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        let note = format!("[molecule: log stream ended: {e}]\n");
                        let _ = tx.send(note.into_bytes()).await;
                        return;
                    }
                    None => return,
                }
            }
        });
        rx
    }
}
