//! `GET /ws`: live events. Each client has its own bounded queue (a
//! broadcast receiver); a client that falls behind gets a `RESYNC` frame and
//! carries on, and never slows anyone else. Admin/anonymous-development
//! clients see every event; a workspace client sees what
//! `App::event_visible_to` allows (itself, status of its direct relations,
//! content only of exchanges it took part in; in-memory hierarchy, no DB
//! round trip per event).

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::SinkExt;
use serde_json::json;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::extract::{CallerHeader, WS_PROTOCOL, WS_READ_BUFFER, WsBearer};
use crate::app::App;
use crate::app::auth::Audience;
use crate::app::events::resync;
use crate::error::AppResult;

const PING_EVERY: Duration = Duration::from_secs(30);

pub async fn upgrade(
    State(app): State<App>,
    WsBearer(bearer): WsBearer,
    CallerHeader(caller): CallerHeader,
    ws: WebSocketUpgrade,
) -> AppResult<Response> {
    let audience = app.auth_events(caller.as_deref(), bearer.creds()).await?;
    // A browser that offered `molecule` (the canvas) needs it selected.
    Ok(ws
        .read_buffer_size(WS_READ_BUFFER)
        .protocols([WS_PROTOCOL])
        .on_upgrade(move |socket| serve(app, socket, audience)))
}

async fn serve(app: App, mut socket: WebSocket, audience: Audience) {
    app.metrics().ws_connected();
    let mut rx = app.subscribe_events();
    let mut shutdown = app.shutdown_signal();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            ev = rx.recv() => {
                // This event and whatever else is already queued go out
                // with one flush (one write under load, not one per frame).
                let mut next = Some(ev);
                let mut open = true;
                while let Some(ev) = next.take() {
                    let frame = match ev {
                        Ok(p) => {
                            let visible = match audience {
                                Audience::Everything => true,
                                Audience::Workspace(me) => app.event_visible_to(me, &p).await,
                            };
                            visible.then(|| Message::Text(p.json().into()))
                        }
                        Err(RecvError::Lagged(missed)) => {
                            app.metrics().add("molecule_websocket_events_dropped_total", &[], missed as f64);
                            tracing::warn!(missed, "websocket client lagging; asking it to resync");
                            let frame = resync(json!({ "missed": missed }));
                            Some(Message::Text(serde_json::to_string(&frame).unwrap_or_default().into()))
                        }
                        Err(RecvError::Closed) => { open = false; break; }
                    };
                    if let Some(frame) = frame && socket.feed(frame).await.is_err() {
                        open = false;
                        break;
                    }
                    next = match rx.try_recv() {
                        Ok(p) => Some(Ok(p)),
                        Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                        Err(TryRecvError::Empty) => None,
                    };
                }
                if !open || socket.flush().await.is_err() { break; }
            },
            msg = socket.recv() => match msg {
                // Inbound frames carry nothing for us; pings are answered by the library.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() { break; }
            }
            _ = shutdown.changed() => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
        }
    }
    app.metrics().ws_disconnected();
}
