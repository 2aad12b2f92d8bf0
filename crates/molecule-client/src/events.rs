//! The live event feed: `GET /ws` (api-contract.md §5.18) as a stream of
//! [`EventEnvelope`]s. It only reads; the platform ignores inbound frames.
//! Recorded history (`GET /events`) is a plain HTTP call in `endpoints.rs`.

use std::time::Duration;

use futures_util::StreamExt;
use molecule_types::EventEnvelope;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::client::{CONNECT_TIMEOUT, Client};
use crate::error::ClientError;

/// Read buffer of a WebSocket: the library zeroes all of it before every
/// read (128 KiB by default, for frames of a few hundred bytes).
const READ_BUFFER: usize = 8 * 1024;

impl Client {
    /// Opens the event WebSocket, sending the client's `X-Workspace-ID` and
    /// `Authorization` when set (an agent subscription; none means the
    /// canvas, which sees every event). A refused handshake (401, 403, 500)
    /// comes back as [`ClientError::Http`]. `wss://` (from an `https://`
    /// base URL) trusts the system's roots.
    pub async fn subscribe(&self) -> Result<EventStream, ClientError> {
        let socket = self.websocket(&ws_url(self.base_url())?).await?;
        Ok(EventStream { socket })
    }

    /// Opens a WebSocket at `url` with the client's headers; a refused
    /// handshake comes back as [`ClientError::Http`].
    pub(crate) async fn websocket(
        &self,
        url: &str,
    ) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, ClientError> {
        crate::client::install_crypto_provider();
        let mut request = url.into_client_request().map_err(ws_error)?;
        request.headers_mut().extend(self.default_headers()?);
        let handshake = tokio_tungstenite::connect_async_with_config(
            request,
            Some(WebSocketConfig::default().read_buffer_size(READ_BUFFER)),
            false,
        );
        let socket = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Ok(Ok((socket, _response))) => socket,
            Ok(Err(tungstenite::Error::Http(response))) => {
                let body = response.body().as_deref().unwrap_or_default();
                return Err(ClientError::from_http(response.status().as_u16(), body));
            }
            Ok(Err(e)) => return Err(ws_error(e)),
            Err(_) => {
                let timeout = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "WebSocket handshake timed out",
                );
                return Err(ws_error(tungstenite::Error::Io(timeout)));
            }
        };
        Ok(socket)
    }
}

/// An open `/ws` subscription.
#[derive(Debug)]
pub struct EventStream {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl EventStream {
    /// The next envelope; `None` once the platform closed the connection.
    /// Control frames are skipped.
    // Not `Stream`: an inherent method keeps callers free of trait imports.
    #[allow(clippy::should_implement_trait)]
    pub async fn next(&mut self) -> Option<Result<EventEnvelope, ClientError>> {
        loop {
            let frame = match self.socket.next().await? {
                Ok(frame) => frame,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return None;
                }
                Err(e) => return Some(Err(ws_error(e))),
            };
            let bytes = match &frame {
                Message::Text(text) => text.as_bytes(),
                Message::Binary(bytes) => bytes.as_ref(),
                Message::Close(_) => return None,
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            return Some(
                serde_json::from_slice(bytes)
                    .map_err(|e| ClientError::decode("WebSocket frame", bytes, e)),
            );
        }
    }

    /// Waits up to `timeout` for an envelope satisfying `pred`, dropping the
    /// ones before it. `Ok(None)` means none arrived in time (the expected
    /// answer of "must not see" tests); a closed stream is an error, since no
    /// match can come any more.
    pub async fn next_matching(
        &mut self,
        mut pred: impl FnMut(&EventEnvelope) -> bool,
        timeout: Duration,
    ) -> Result<Option<EventEnvelope>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err(ws_error(tungstenite::Error::ConnectionClosed)),
                Ok(Some(envelope)) => {
                    let envelope = envelope?;
                    if pred(&envelope) {
                        return Ok(Some(envelope));
                    }
                }
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) -> Result<(), ClientError> {
        match self.socket.close(None).await {
            Ok(())
            | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Ok(())
            }
            Err(e) => Err(ws_error(e)),
        }
    }
}

pub(crate) fn ws_error(e: tungstenite::Error) -> ClientError {
    ClientError::WebSocket(Box::new(e))
}

/// `http(s)://host[:port][/prefix]` → `ws(s)://host[:port][/prefix]/ws`.
pub(crate) fn ws_url(base_url: &str) -> Result<String, ClientError> {
    ws_url_at(base_url, "/ws")
}

/// `http(s)://host[:port][/prefix]` → `ws(s)://host[:port][/prefix]<path>`.
pub(crate) fn ws_url_at(base_url: &str, path: &str) -> Result<String, ClientError> {
    for (http, ws) in [("http://", "ws://"), ("https://", "wss://")] {
        if let Some(prefix) = base_url.get(..http.len())
            && prefix.eq_ignore_ascii_case(http)
        {
            let rest = base_url[http.len()..].trim_end_matches('/');
            if rest.is_empty() {
                break;
            }
            return Ok(format!("{ws}{rest}{path}"));
        }
    }
    Err(ClientError::InvalidRequest(format!(
        "base URL {base_url:?} must start with http:// or https:// and name a host"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_follows_the_base_url() {
        for (base, want) in [
            ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/ws"),
            ("http://127.0.0.1:8080/", "ws://127.0.0.1:8080/ws"),
            ("https://molecule.example", "wss://molecule.example/ws"),
            ("HTTP://Host:1", "ws://Host:1/ws"),
            ("http://h/platform", "ws://h/platform/ws"),
        ] {
            assert_eq!(ws_url(base).unwrap(), want, "{base}");
        }
    }

    #[test]
    fn ws_url_rejects_other_schemes() {
        for base in [
            "",
            "127.0.0.1:8080",
            "ftp://h",
            "ws://h",
            "http://",
            "http:/h",
        ] {
            let err = ws_url(base).unwrap_err();
            assert!(
                matches!(err, ClientError::InvalidRequest(_)),
                "{base}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn subscribe_to_a_closed_port_is_a_websocket_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = Client::new(format!("http://127.0.0.1:{port}"))
            .subscribe()
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::WebSocket(_)), "{err:?}");
        assert_eq!(err.status(), None);
    }
}
