//! The client against a hand-written fake platform on a loopback socket: one
//! canned answer per connection, the raw request captured for assertions.
//! This checks the wire (paths, headers, bodies, status mapping, WebSocket
//! framing) without the real server; the server's own tests drive the real
//! thing through this client.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use molecule_client::{Client, ClientError, Method};
use molecule_types::EventEnvelope;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use uuid::Uuid;

const ID: &str = "3f1c0b7e-1234-4000-8000-000000000000";

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body) as text.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client hung up mid-request");
        raw.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .map_or(0, |v| v.parse::<usize>().unwrap());
            if raw.len() >= head_end + 4 + length {
                return text;
            }
        }
    }
}

/// Answers one request with `status`, extra header lines and `body`; the
/// handle yields the request text.
async fn serve_once(status: &str, headers: &str, body: &str) -> (String, JoinHandle<String>) {
    let (listener, url) = listen().await;
    let response = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let handle = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let request = read_request(&mut stream).await;
        stream.write_all(response.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
        request
    });
    (url, handle)
}

const JSON: &str = "Content-Type: application/json\r\n";

#[tokio::test]
async fn typed_calls_send_identity_headers_and_surface_refusal_bodies() {
    let body = json!({"status": "confirmation_required", "message": "m",
        "children": [{"id": ID, "name": "child"}], "children_count": 1});
    let (url, server) = serve_once("409 Conflict", JSON, &body.to_string()).await;
    let client = Client::new(url)
        .with_token(Some("tok".into()))
        .with_workspace_id(Some("caller"));

    let err = client
        .delete_workspace(ID.parse().unwrap(), false)
        .await
        .unwrap_err();

    assert_eq!(err.status(), Some(409));
    assert_eq!(err.body().unwrap()["children"][0]["name"], "child");
    let request = server.await.unwrap().to_ascii_lowercase();
    assert!(
        request.starts_with(&format!("delete /workspaces/{ID} http/1.1\r\n")),
        "{request}"
    );
    assert!(
        request.contains("\r\nauthorization: bearer tok\r\n"),
        "{request}"
    );
    assert!(
        request.contains("\r\nx-workspace-id: caller\r\n"),
        "{request}"
    );
}

#[tokio::test]
async fn json_bodies_go_out_typed_and_come_back_decoded() {
    let (url, server) = serve_once("200 OK", JSON, r#"{"allowed":true}"#).await;

    let decision = Client::new(url)
        .check_access("system:cron", ID)
        .await
        .unwrap();

    assert!(decision.allowed);
    let request = server.await.unwrap();
    assert!(
        request.starts_with("POST /registry/check-access HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{request}"
    );
    assert!(
        request.ends_with(&format!(
            r#"{{"caller_id":"system:cron","target_id":"{ID}"}}"#
        )),
        "{request}"
    );
}

#[tokio::test]
async fn a_2xx_of_the_wrong_shape_is_a_decode_error() {
    let (url, _server) = serve_once("200 OK", JSON, r#"{"status":1}"#).await;
    let err = Client::new(url).health().await.unwrap_err();
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("GET /health"), "{err}");
}

#[tokio::test]
async fn raw_requests_send_exact_bytes_and_return_any_status() {
    let (url, server) = serve_once(
        "400 Bad Request",
        "X-RateLimit-Limit: 600\r\n",
        r#"{"error":"EOF"}"#,
    )
    .await;

    let response = Client::new(url)
        .raw(Method::POST, "/registry/register")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status, 400);
    assert_eq!(response.header("x-ratelimit-limit"), Some("600"));
    assert_eq!(response.json().unwrap(), json!({"error": "EOF"}));
    assert!(server.await.unwrap().ends_with("\r\n\r\n{not json"));
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let (url, _server) = serve_once("301 Moved Permanently", "Location: /health\r\n", "").await;
    let response = Client::new(url)
        .request(Method::GET, "/health/", None)
        .await
        .unwrap();
    assert_eq!(response.status, 301);
    assert_eq!(response.header("location"), Some("/health"));
}

#[tokio::test]
async fn workspace_state_reads_the_deleted_answer_of_a_404() {
    let id: Uuid = ID.parse().unwrap();
    let removed = json!({"workspace_id": ID, "status": "removed", "deleted": true}).to_string();
    let (url, _server) = serve_once("404 Not Found", JSON, &removed).await;
    let state = Client::new(url).workspace_state(id).await.unwrap();
    assert!(state.deleted);
    assert_eq!(state.workspace_id, id);

    let (url, _server) = serve_once("404 Not Found", "", "404 page not found").await;
    let err = Client::new(url).workspace_state(id).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
}

fn envelope(event: &str) -> String {
    json!({"event": event, "workspace_id": ID, "timestamp": "2026-01-02T03:04:05Z", "payload": {}})
        .to_string()
}

#[tokio::test]
async fn subscribe_sends_identity_and_yields_matching_envelopes() {
    let (listener, url) = listen().await;
    let seen_headers = Arc::new(Mutex::new(None));
    let seen = seen_headers.clone();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // The error type is fixed by tungstenite's callback signature.
        #[allow(clippy::result_large_err)]
        let callback = move |request: &Request, response: Response| {
            *seen.lock().unwrap() = Some(request.headers().clone());
            Ok(response)
        };
        let mut socket = tokio_tungstenite::accept_hdr_async(stream, callback)
            .await
            .unwrap();
        use futures_util::SinkExt;
        socket.send(Message::Ping(Vec::new().into())).await.unwrap();
        socket
            .send(Message::text(envelope("TASK_UPDATED")))
            .await
            .unwrap();
        socket
            .send(Message::text(envelope("WORKSPACE_ONLINE")))
            .await
            .unwrap();
        socket.close(None).await.unwrap();
    });
    let client = Client::new(url)
        .with_token(Some("tok".into()))
        .with_workspace_id(Some(ID));

    let mut events = client.subscribe().await.unwrap();
    let online = events
        .next_matching(
            |e: &EventEnvelope| e.event == "WORKSPACE_ONLINE",
            Duration::from_secs(10),
        )
        .await
        .unwrap()
        .expect("WORKSPACE_ONLINE before the deadline");

    assert_eq!(online.workspace_id, ID);
    let headers = seen_headers.lock().unwrap().clone().unwrap();
    assert_eq!(headers["authorization"], "Bearer tok");
    assert_eq!(headers["x-workspace-id"], ID);
    let after_close = events
        .next_matching(|_| true, Duration::from_secs(10))
        .await;
    assert!(
        matches!(after_close, Err(ClientError::WebSocket(_))),
        "{after_close:?}"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn next_matching_gives_none_when_nothing_arrives_in_time() {
    let (listener, url) = listen().await;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        let _ = done_rx.await;
    });

    let mut events = Client::new(url).subscribe().await.unwrap();
    let got = events
        .next_matching(|_| true, Duration::from_millis(200))
        .await
        .unwrap();

    assert_eq!(got, None);
    let _ = done_tx.send(());
    server.await.unwrap();
}

#[tokio::test]
async fn a_refused_handshake_is_an_http_error() {
    let (url, _server) = serve_once(
        "401 Unauthorized",
        JSON,
        r#"{"error":"missing workspace auth token"}"#,
    )
    .await;
    let err = Client::new(url)
        .with_workspace_id(Some(ID))
        .subscribe()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(
        matches!(&err, ClientError::Http { message, .. } if message == "missing workspace auth token"),
        "{err:?}"
    );
}
