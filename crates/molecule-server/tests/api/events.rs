use molecule_types::dto::Heartbeat;
use molecule_types::{Event, EventType};
use serde_json::json;
use std::time::Duration;

use crate::start;

#[tokio::test]
async fn workspace_clients_only_see_what_they_may_talk_to() {
    let t = start().await;
    let root = t.create("root", None).await;
    let a = t.create("a", Some(root)).await;
    let b = t.create("b", Some(root)).await;
    let a1 = t.create("a1", Some(a)).await;
    let b1 = t.create("b1", Some(b)).await;
    let token_a1 = t.register(a1).await;
    let mut watcher = t.as_workspace(a1, &token_a1).subscribe().await.unwrap();
    let token_b1 = t.register(b1).await; // cousin: invisible to a1
    let token_a = t.register(a).await; // parent: visible
    let _ = (token_b1, token_a);
    let mut seen = Vec::new();
    while let Some(e) = watcher
        .next_matching(
            |e| e.event == "WORKSPACE_ONLINE",
            Duration::from_millis(700),
        )
        .await
        .unwrap()
    {
        seen.push(e.workspace_id);
    }
    assert_eq!(seen, vec![a.to_string()], "parent visible, cousin not");
}

#[tokio::test]
async fn websocket_auth_for_workspace_clients() {
    let t = start().await;
    let id = t.create("w", None).await;
    let token = t.register(id).await;
    let err = t
        .client
        .clone()
        .with_workspace_id(Some(id))
        .subscribe()
        .await;
    assert!(err.is_err(), "a workspace with a token must present it");
    assert!(t.as_workspace(id, &token).subscribe().await.is_ok());
}

#[tokio::test]
async fn a_stalled_client_never_holds_back_the_others() {
    let t = start().await;
    let mut fast = t.client.subscribe().await.unwrap();
    let mut stalled = t.client.subscribe().await.unwrap();
    let id = t.create("w", None).await;
    let filler = "x".repeat(1024);
    let total = 20_000;
    for chunk in 0..total / 200 {
        for i in 0..200 {
            let n = chunk * 200 + i;
            t.server
                .app
                .emit(Event::new(
                    EventType::AgentMessage,
                    id,
                    json!({ "n": n, "message": filler }),
                ))
                .await;
        }
        let last = chunk * 200 + 199;
        let got = fast
            .next_matching(|e| e.payload["n"] == last, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            got.is_some(),
            "fast client got event {last} while another client stalls"
        );
    }
    let resync = stalled
        .next_matching(|e| e.event == "RESYNC", Duration::from_secs(10))
        .await
        .unwrap();
    let resync = resync.expect("the stalled client is told to resync");
    assert!(resync.payload["missed"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn heartbeat_statistics_are_flushed_to_the_database() {
    let t = start().await;
    let id = t.create("w", None).await;
    let token = t.register(id).await;
    t.heartbeat(
        id,
        &token,
        Heartbeat {
            active_tasks: 3,
            uptime_seconds: 42,
            error_rate: 0.2,
            ..Default::default()
        },
    )
    .await;
    let row = crate::eventually(Duration::from_secs(5), || async {
        let row = t.store().await.workspace_get(id).await.unwrap().unwrap();
        (row.uptime_seconds == 42).then_some(row)
    })
    .await
    .expect("coalesced write reaches the store");
    assert_eq!((row.active_tasks, row.last_error_rate), (3, 0.2));
    assert!(row.last_heartbeat_at.is_some());
}

/// The platform reads WebSocket frames through a small buffer (its library
/// zeroes the whole buffer before each read); a client frame larger than
/// it is still read whole and the socket carries on.
#[tokio::test]
async fn a_client_frame_larger_than_the_read_buffer_is_read_whole() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let t = start().await;
    let url = format!("{}/ws", t.client.base_url().replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket
        .send(Message::Text("x".repeat(200 * 1024).into()))
        .await
        .unwrap();
    let id = t.create("after-the-big-frame", None).await;
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = socket.next().await {
            if let Message::Text(text) = frame.expect("the socket stays open") {
                let e: serde_json::Value = serde_json::from_str(&text).unwrap();
                if e["workspace_id"] == id.to_string() {
                    return Some(e);
                }
            }
        }
        None
    })
    .await
    .expect("an event after the big frame");
    assert!(got.is_some(), "the socket closed after the big frame");
}
