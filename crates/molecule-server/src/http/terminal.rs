//! `GET /workspaces/:id/logs`: the runtime's output, streamed when
//! following.
//!
//! `GET /workspaces/:id/terminal`: the WebSocket bridge to a shell opened by
//! `App::open_terminal`. The shell is opened before the upgrade, so its
//! refusals keep their HTTP statuses (401/403/404/503). Then: the shell's
//! output goes out as binary frames; inbound frames are typed into it raw,
//! except a text frame holding a resize message; no input for
//! `terminal_idle` closes it. However it ends — the client closes, the shell
//! exits, the idle deadline, a platform shutdown — the shell's session is
//! ended, so no process is left behind.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::response::Response;
use futures_util::StreamExt;
use molecule_provisioner::{Terminal, TerminalSize};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::extract::{Bearer, WorkspacePath};
use crate::app::App;
use crate::app::workspaces::terminal::TerminalControlMessage;
use crate::error::{AppError, AppResult};

/// `?cols=&rows=`: the initial size (80×24 when absent).
#[derive(Debug, Deserialize)]
pub struct SizeQuery {
    cols: Option<u16>,
    rows: Option<u16>,
}

/// `?tail=&follow=` of `GET /workspaces/:id/logs`.
#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    tail: Option<usize>,
    follow: Option<bool>,
}

/// Most lines a logs request may ask for.
const MAX_TAIL: usize = 10_000;

/// `GET /workspaces/:id/logs`: plain text, streamed while following.
pub async fn logs(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    Query(q): Query<LogsQuery>,
) -> AppResult<Response> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    let tail = q.tail.unwrap_or(100);
    if tail > MAX_TAIL {
        return Err(AppError::invalid("tail must be at most 10000"));
    }
    let rx = app
        .workspace_logs(access, tail, q.follow.unwrap_or(false))
        .await?;
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|c| (Ok::<_, std::convert::Infallible>(bytes::Bytes::from(c)), rx))
    });
    Ok(Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .header("cache-control", "no-store")
        .body(axum::body::Body::from_stream(chunks))
        .expect("static headers are valid"))
}

pub async fn upgrade(
    State(app): State<App>,
    bearer: Bearer,
    WorkspacePath(id): WorkspacePath,
    Query(q): Query<SizeQuery>,
    ws: WebSocketUpgrade,
) -> AppResult<Response> {
    let access = app.auth_workspace(id, bearer.creds()).await?;
    let default = TerminalSize::default();
    let size = TerminalSize {
        cols: q.cols.unwrap_or(default.cols),
        rows: q.rows.unwrap_or(default.rows),
    };
    if size.cols == 0 || size.rows == 0 {
        return Err(AppError::invalid("cols and rows must be positive"));
    }
    let terminal = app.open_terminal(access, size).await?;
    tracing::info!(workspace_id = %id, "terminal opened");
    Ok(ws
        .read_buffer_size(super::extract::WS_READ_BUFFER)
        .on_upgrade(move |socket| async move {
            bridge(&app, socket, terminal).await;
            tracing::info!(workspace_id = %id, "terminal closed");
        }))
}

/// Why the bridge stopped.
enum End {
    ClientGone,
    ShellExited,
    Idle,
    Shutdown,
}

async fn bridge(app: &App, mut socket: WebSocket, terminal: Terminal) {
    let Terminal {
        mut output,
        mut input,
        control,
    } = terminal;
    let idle = app.config().terminal_idle;
    let mut shutdown = app.shutdown_signal();
    let deadline = tokio::time::sleep(idle);
    tokio::pin!(deadline);
    let end = loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(bytes)) => {
                    if socket.send(Message::Binary(bytes)).await.is_err() {
                        break End::ClientGone;
                    }
                }
                Some(Err(_)) | None => break End::ShellExited,
            },
            frame = socket.recv() => {
                let typed = match frame {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Text(text))) => {
                        if let Some(TerminalControlMessage::Resize { cols, rows }) =
                            TerminalControlMessage::parse(&text)
                        {
                            let _ = control.resize(TerminalSize { cols, rows }).await;
                            deadline.as_mut().reset(tokio::time::Instant::now() + idle);
                            continue;
                        }
                        text.as_bytes().to_vec().into()
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break End::ClientGone,
                };
                deadline.as_mut().reset(tokio::time::Instant::now() + idle);
                if input.write_all(&typed).await.is_err() || input.flush().await.is_err() {
                    break End::ShellExited;
                }
            }
            () = &mut deadline => break End::Idle,
            _ = shutdown.changed() => break End::Shutdown,
        }
    };
    drop(input);
    if let Err(e) = control.close().await {
        tracing::warn!(error = %e, "ending a terminal's shell failed");
    }
    let reason = match end {
        End::ClientGone => return,
        End::ShellExited => "shell exited",
        End::Idle => "idle timeout",
        End::Shutdown => "platform shutting down",
    };
    let frame = CloseFrame {
        code: if matches!(end, End::ShellExited) {
            close_code::NORMAL
        } else {
            close_code::AWAY
        },
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
