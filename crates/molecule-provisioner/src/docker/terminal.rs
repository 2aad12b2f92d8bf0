//! A TTY exec in the workspace's running container (see `terminal.rs`).

use async_trait::async_trait;
use bollard::Docker;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;
use std::time::Duration;
use uuid::Uuid;

use super::DockerProvisioner;
use super::connect::call_with;
use crate::terminal::{
    Terminal, TerminalControl, TerminalSize, read_marker, signal_session_script, start_script,
};
use crate::{Observation, ProvisionError, Result};

impl DockerProvisioner {
    pub(super) async fn docker_terminal(&self, id: Uuid, size: TerminalSize) -> Result<Terminal> {
        use crate::Provisioner;
        if !matches!(self.inspect(id).await, Observation::Running) {
            return Err(ProvisionError::NotFound);
        }
        let name = molecule_types::container_name(id);
        let config = CreateExecOptions {
            cmd: Some(vec!["/bin/sh".to_string(), "-c".into(), start_script()]),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(true),
            env: Some(vec!["TERM=xterm-256color".to_string()]),
            ..Default::default()
        };
        let created = self
            .call("create_exec", self.docker.create_exec(&name, config))
            .await?;
        let start = StartExecOptions {
            detach: false,
            tty: true,
            output_capacity: None,
        };
        let started = self
            .call(
                "start_exec",
                self.docker.start_exec(&created.id, Some(start)),
            )
            .await?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(ProvisionError::Failed("exec started detached".into()));
        };
        let output = Box::pin(output.map(|chunk| {
            chunk
                .map(|c| c.into_bytes())
                .map_err(|e| std::io::Error::other(e.to_string()))
        }));
        let control = DockerTerminal {
            docker: self.docker.clone(),
            call_timeout: self.opts.call_timeout,
            container: name,
            exec: created.id,
            pid: None,
        };
        let (started, output) = match read_marker(output).await {
            Ok(read) => read,
            Err(e) => {
                let _ = control.close().await;
                return Err(e);
            }
        };
        let control = DockerTerminal {
            pid: Some(started.pid),
            ..control
        };
        // A size the engine refuses leaves the default; not worth failing.
        let _ = control.resize(size).await;
        Ok(Terminal {
            output,
            input,
            control: Box::new(control),
        })
    }
}

struct DockerTerminal {
    docker: Docker,
    call_timeout: Duration,
    container: String,
    exec: String,
    /// The shell's PID inside the container (its session id).
    pid: Option<u32>,
}

impl DockerTerminal {
    /// Runs `script` with `/bin/sh -c` in the container, to its end.
    async fn sh(&self, script: String) -> Result<()> {
        let config = CreateExecOptions {
            cmd: Some(vec!["/bin/sh".to_string(), "-c".into(), script]),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let created = call_with(
            self.call_timeout,
            "create_exec",
            self.docker.create_exec(&self.container, config),
        )
        .await?;
        let started = call_with(
            self.call_timeout,
            "start_exec",
            self.docker.start_exec(&created.id, None),
        )
        .await?;
        if let StartExecResults::Attached { mut output, .. } = started {
            let drain = async { while output.next().await.is_some() {} };
            let _ = tokio::time::timeout(self.call_timeout, drain).await;
        }
        Ok(())
    }
}

#[async_trait]
impl TerminalControl for DockerTerminal {
    async fn resize(&self, size: TerminalSize) -> Result<()> {
        let options = ResizeExecOptions {
            height: size.rows.max(1),
            width: size.cols.max(1),
        };
        call_with(
            self.call_timeout,
            "resize_exec",
            self.docker.resize_exec(&self.exec, options),
        )
        .await
        .map_err(ProvisionError::from)
    }

    async fn signal_session(&self, signal: &str) -> Result<()> {
        // The exec's process leads its own session (it owns the TTY).
        match self.pid {
            Some(pid) => self.sh(signal_session_script(pid, signal)).await,
            None => Ok(()),
        }
    }

    async fn running(&self) -> Result<bool> {
        let info = call_with(
            self.call_timeout,
            "inspect_exec",
            self.docker.inspect_exec(&self.exec),
        )
        .await?;
        Ok(info.running == Some(true))
    }
}
