//! `GET /workspaces/:id/terminal` (api-contract §5.18, subsystems §5.8):
//! opening a shell in the workspace's runtime; and `GET …/logs`, its output. The bridge to the WebSocket
//! is `http/terminal.rs`; the shell itself is the provisioner's
//! ([`molecule_provisioner::Terminal`]). The command is fixed (the best
//! shell of the image), never taken from the client.

use molecule_provisioner::{ProvisionError, Terminal, TerminalSize};
use molecule_types::WorkspaceStatus;
use serde::Deserialize;
use std::time::Duration;

use crate::app::App;
use crate::app::auth::WorkspaceAccess;
use crate::error::{AppError, AppResult};

/// A terminal with no input for this long is closed.
pub const TERMINAL_IDLE: Duration = Duration::from_secs(30 * 60);

/// The one control message a client may send (a text frame that is exactly
/// this JSON object); every other frame is input. See docs/compat.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum TerminalControlMessage {
    Resize { cols: u16, rows: u16 },
}

impl TerminalControlMessage {
    /// The control message `text` is, if it is one.
    pub fn parse(text: &str) -> Option<TerminalControlMessage> {
        if !text.trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str(text).ok()
    }
}

impl App {
    /// Opens a shell in the running workspace: 503 without a runtime backend
    /// (or when it cannot answer), 404 when the workspace does not run.
    pub async fn open_terminal(
        &self,
        access: WorkspaceAccess,
        size: TerminalSize,
    ) -> AppResult<Terminal> {
        let provisioner = self
            .provisioner
            .as_ref()
            .ok_or(AppError::Unavailable("Docker not available"))?;
        let id = access.uuid();
        let row = self.workspace_row(id).await?;
        // A paused workspace's runtime may still be stopping: it is not
        // there to open a shell in.
        if matches!(
            row.status,
            WorkspaceStatus::Paused | WorkspaceStatus::Removed
        ) {
            return Err(AppError::not_found("container not running"));
        }
        provisioner.terminal(id, size).await.map_err(|e| match e {
            ProvisionError::NotFound => AppError::not_found("container not running"),
            ProvisionError::Unavailable(_) => AppError::Unavailable("runtime backend unavailable"),
            other => AppError::Internal {
                public: "failed to open a terminal",
                cause: other.to_string(),
            },
        })
    }

    /// `GET /workspaces/:id/logs` (an addition, docs/compat.md): the
    /// runtime's output as the provisioner keeps it — the last `tail` lines
    /// and, when `follow`, what comes after. 503 without a runtime backend,
    /// 404 when the workspace has no container or process.
    pub async fn workspace_logs(
        &self,
        access: WorkspaceAccess,
        tail: usize,
        follow: bool,
    ) -> AppResult<tokio::sync::mpsc::Receiver<Vec<u8>>> {
        let provisioner = self
            .provisioner
            .as_ref()
            .ok_or(AppError::Unavailable("Docker not available"))?;
        let id = access.uuid();
        self.workspace_row(id).await?;
        provisioner
            .log_stream(id, tail, follow)
            .await
            .map_err(|e| match e {
                ProvisionError::NotFound => AppError::not_found("workspace has no container"),
                ProvisionError::Unavailable(_) => {
                    AppError::Unavailable("runtime backend unavailable")
                }
                other => AppError::Internal {
                    public: "failed to read logs",
                    cause: other.to_string(),
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_exact_resize_object_is_a_control_message() {
        assert_eq!(
            TerminalControlMessage::parse(r#"{"type":"resize","cols":120,"rows":40}"#),
            Some(TerminalControlMessage::Resize {
                cols: 120,
                rows: 40
            })
        );
        for input in [
            "ls -la\r",
            r#"{"type":"resize","cols":120}"#,
            r#"{"type":"resize","cols":120,"rows":40,"x":1}"#,
            r#"{"type":"reboot"}"#,
            r#"{"type":"resize","cols":-1,"rows":40}"#,
            "{",
        ] {
            assert_eq!(TerminalControlMessage::parse(input), None, "{input}");
        }
    }
}
