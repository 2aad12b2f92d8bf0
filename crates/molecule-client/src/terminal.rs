//! `GET /workspaces/:id/terminal`: a shell in a workspace's runtime over a
//! WebSocket. Output arrives as bytes; input is sent as binary frames; a
//! resize is the one text frame the platform interprets (docs/compat.md).

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::client::Client;
use crate::error::ClientError;
use crate::events::{ws_error, ws_url_at};

impl Client {
    /// Opens a terminal of `cols`×`rows` in workspace `id`. The platform's
    /// refusals (401, 404 not running, 503 no runtime backend) come back as
    /// [`ClientError::Http`].
    pub async fn terminal(
        &self,
        id: Uuid,
        cols: u16,
        rows: u16,
    ) -> Result<TerminalSession, ClientError> {
        let url = ws_url_at(
            self.base_url(),
            &format!("/workspaces/{id}/terminal?cols={cols}&rows={rows}"),
        )?;
        let socket = self.websocket(&url).await?;
        Ok(TerminalSession { socket })
    }
}

/// How a terminal's output ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TerminalOutput {
    Bytes(Bytes),
    /// The platform closed the terminal (the shell exited, idle, shutdown),
    /// with its reason.
    Closed(Option<String>),
}

/// An open terminal.
#[derive(Debug)]
pub struct TerminalSession {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl TerminalSession {
    /// Types `bytes` into the shell.
    pub async fn send(&mut self, bytes: impl Into<Bytes>) -> Result<(), ClientError> {
        self.socket
            .send(Message::Binary(bytes.into()))
            .await
            .map_err(ws_error)
    }

    /// Tells the shell its new size.
    pub async fn resize(&mut self, cols: u16, rows: u16) -> Result<(), ClientError> {
        let message = json!({ "type": "resize", "cols": cols, "rows": rows });
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .map_err(ws_error)
    }

    /// The next output, or how the terminal ended.
    pub async fn next(&mut self) -> Result<TerminalOutput, ClientError> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Binary(bytes))) => return Ok(TerminalOutput::Bytes(bytes)),
                Some(Ok(Message::Text(text))) => {
                    return Ok(TerminalOutput::Bytes(Bytes::from(text.as_bytes().to_vec())));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(TerminalOutput::Closed(
                        frame.map(|f: CloseFrame| f.reason.to_string()),
                    ));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(ws_error(e)),
                None => return Ok(TerminalOutput::Closed(None)),
            }
        }
    }

    /// Closes the terminal from this side.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.socket.close(None).await.map_err(ws_error)
    }
}
