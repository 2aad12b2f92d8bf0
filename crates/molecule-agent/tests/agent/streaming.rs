//! `message/stream`: SSE framing, event order, and that events reach the
//! caller while the executor is still working (not buffered to the end).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{SseReader, call, echo, http, message, start};

const WORD_DELAY: Duration = Duration::from_millis(150);

async fn open_stream(base: &str, id: Value, params: Value) -> SseReader {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "message/stream", "params": params});
    let response = http()
        .post(format!("{base}/"))
        .json(&body)
        .send()
        .await
        .expect("stream opens");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    SseReader::new(response)
}

/// A streaming method's error is an event stream of one JSON-RPC error, so
/// a streaming client reads it where it reads events.
#[tokio::test]
async fn streaming_errors_come_as_one_event() {
    let agent = start(echo(0), None).await;
    let base = format!("http://{}", agent.local_addr());
    let done = call(&agent, "message/send", message("x")).await;
    let cases = [
        (
            "message/stream",
            json!({"message": {"role": "user", "messageId": "m", "parts": [{"kind": "file"}]}}),
            -32602,
        ),
        ("tasks/resubscribe", json!({"id": "no-such-task"}), -32001),
        ("tasks/resubscribe", json!({"id": done["id"]}), -32004),
    ];
    for (method, params, code) in cases {
        let body = json!({"jsonrpc": "2.0", "id": "s", "method": method, "params": params});
        let response = http()
            .post(format!("{base}/"))
            .json(&body)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 200);
        let mut stream = SseReader::new(response);
        let event = stream.next().await.expect("one event");
        assert_eq!(event["error"]["code"], code, "{method}: {event}");
        assert_eq!(event["id"], "s");
        assert!(stream.next().await.is_none(), "then the stream ends");
    }
    agent.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn stream_events_arrive_while_the_executor_works() {
    let agent = start(echo(WORD_DELAY.as_millis() as u64), None).await;
    let base = format!("http://{}", agent.local_addr());
    let mut stream = open_stream(&base, json!(9), message("one two three four")).await;

    let first = stream.next().await.expect("a first event");
    let first_at = Instant::now();
    assert_eq!(first["jsonrpc"], "2.0");
    assert_eq!(first["id"], 9);
    let update = &first["result"];
    assert_eq!(update["kind"], "status-update");
    assert_eq!(update["status"]["state"], "working");
    assert_eq!(update["final"], false);

    // The executor needs 5 words x 150 ms: it cannot have finished yet, and
    // the task store agrees.
    let task_id = update["taskId"].clone();
    let task = call(&agent, "tasks/get", json!({"id": task_id})).await;
    assert_eq!(
        task["status"]["state"], "working",
        "first event came before the end"
    );

    let mut events = vec![first.clone()];
    let mut arrivals = vec![first_at];
    while let Some(event) = stream.next().await {
        arrivals.push(Instant::now());
        events.push(event);
    }
    for event in &events {
        assert_eq!(event["id"], 9);
        assert_eq!(event["result"]["taskId"], task_id);
        assert!(event.get("error").is_none(), "{event}");
    }
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["result"]["kind"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"status-update"));
    assert_eq!(kinds.last(), Some(&"status-update"));
    assert!(
        kinds[1..kinds.len() - 1]
            .iter()
            .all(|k| *k == "artifact-update"),
        "{kinds:?}"
    );

    let chunks: Vec<&Value> = events
        .iter()
        .map(|e| &e["result"])
        .filter(|r| r["kind"] == "artifact-update")
        .collect();
    assert_eq!(chunks.len(), 5, "one chunk per word");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["artifact"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "echo: one two three four");
    assert_eq!(chunks[0]["append"], false);
    assert!(chunks[1..].iter().all(|c| c["append"] == true));
    assert!(chunks.iter().rev().skip(1).all(|c| c["lastChunk"] == false));
    assert_eq!(chunks[chunks.len() - 1]["lastChunk"], true);

    let last = &events[events.len() - 1]["result"];
    assert_eq!(last["status"]["state"], "completed");
    assert_eq!(last["final"], true);

    // Flushed as produced: the events are spread over the executor's run,
    // not delivered together at its end.
    let spread = arrivals[arrivals.len() - 1] - arrivals[1];
    assert!(spread >= WORD_DELAY * 3, "events arrived within {spread:?}");

    let task = call(&agent, "tasks/get", json!({"id": task_id})).await;
    assert_eq!(task["status"]["state"], "completed");
    agent.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_canceled_stream_ends_with_a_final_canceled_update() {
    let agent = start(echo(WORD_DELAY.as_millis() as u64), None).await;
    let base = format!("http://{}", agent.local_addr());
    let mut stream = open_stream(&base, json!("s"), message("a b c d e f g h")).await;
    let first = stream.next().await.expect("a first event");
    let task_id = first["result"]["taskId"].clone();
    let canceled = call(&agent, "tasks/cancel", json!({"id": task_id})).await;
    assert_eq!(canceled["status"]["state"], "canceled");

    let mut last = first;
    while let Some(event) = stream.next().await {
        last = event;
    }
    assert_eq!(last["result"]["kind"], "status-update");
    assert_eq!(last["result"]["status"]["state"], "canceled");
    assert_eq!(last["result"]["final"], true);
    agent.shutdown().await.expect("clean shutdown");
}
