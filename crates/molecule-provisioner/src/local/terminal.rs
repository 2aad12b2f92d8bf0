//! A shell on a pseudo-terminal in a local workspace's directory (see
//! `terminal.rs`). The PTY comes from util-linux's `script`, which every
//! Debian system has: it opens the PTY, makes it the controlling terminal of
//! a new session and relays between it and our pipes, so no `unsafe` is
//! needed here. Resizing sets the PTY's size with `stty` and signals the
//! shell; closing hangs up its session, then kills what is left.

use async_trait::async_trait;
use bytes::Bytes;
use std::process::Stdio;
use std::sync::Mutex;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use uuid::Uuid;

use super::LocalProvisioner;
use crate::terminal::{
    Terminal, TerminalControl, TerminalSize, end_session, read_marker, signal_session_script,
    start_script,
};
use crate::{Observation, ProvisionError, Result};

impl LocalProvisioner {
    pub(super) async fn local_terminal(&self, id: Uuid, size: TerminalSize) -> Result<Terminal> {
        let (work_dir, env) = {
            let mut children = self.children();
            let c = children.get_mut(&id).ok_or(ProvisionError::NotFound)?;
            if c.observe() != Observation::Running {
                return Err(ProvisionError::NotFound);
            }
            (c.work_dir.clone(), c.env.clone())
        };
        let mut child = Command::new("script")
            .args(["--quiet", "--flush", "--return", "--command"])
            .arg(start_script())
            .arg("/dev/null")
            .current_dir(&work_dir)
            .env_clear()
            .envs(env)
            .env("SHELL", "/bin/sh")
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ProvisionError::Failed(format!("terminal: cannot run `script`: {e}")))?;
        let (Some(input), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ProvisionError::Failed("terminal: pipes unavailable".into()));
        };
        let output = Box::pin(futures_util::stream::unfold(
            stdout,
            |mut stdout| async move {
                let mut buf = vec![0u8; 4096];
                match stdout.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Bytes::from(buf)), stdout))
                    }
                    Err(e) => Some((Err(e), stdout)),
                }
            },
        ));
        let (started, output) = read_marker(output).await?;
        let control = LocalTerminal {
            pid: started.pid,
            tty: started.tty,
            script: Mutex::new(Some(child)),
        };
        let _ = control.resize(size).await;
        Ok(Terminal {
            output,
            input: Box::pin(input),
            control: Box::new(control),
        })
    }
}

struct LocalTerminal {
    /// The shell's PID (its session id).
    pid: u32,
    tty: Option<String>,
    script: Mutex<Option<Child>>,
}

async fn run(program: &str, args: &[String]) -> Result<bool> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .map(|s| s.success())
        .map_err(|e| ProvisionError::Failed(format!("terminal: cannot run {program}: {e}")))
}

#[async_trait]
impl TerminalControl for LocalTerminal {
    async fn resize(&self, size: TerminalSize) -> Result<()> {
        let Some(tty) = &self.tty else {
            return Err(ProvisionError::Failed(
                "terminal: no TTY device known".into(),
            ));
        };
        let args = [
            "-F".to_string(),
            tty.clone(),
            "cols".into(),
            size.cols.max(1).to_string(),
            "rows".into(),
            size.rows.max(1).to_string(),
        ];
        run("stty", &args).await?;
        run("kill", &["-WINCH".into(), self.pid.to_string()]).await?;
        Ok(())
    }

    async fn signal_session(&self, signal: &str) -> Result<()> {
        let script = signal_session_script(self.pid, signal);
        run("/bin/sh", &["-c".to_string(), script]).await?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        end_session(self).await?;
        let script = self.script.lock().ok().and_then(|mut s| s.take());
        if let Some(mut script) = script {
            let _ = script.kill().await;
        }
        Ok(())
    }

    async fn running(&self) -> Result<bool> {
        run("kill", &["-0".into(), self.pid.to_string()]).await
    }
}
