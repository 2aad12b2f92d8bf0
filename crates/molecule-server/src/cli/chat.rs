//! A conversation with a workspace's agent through the platform's A2A proxy
//! (`POST /workspaces/:id/a2a`, `message/stream`), shared by `molecule chat`
//! and the dashboard's chat pane. The answer's text is handed over piece by
//! piece as the agent streams it; the conversation's `contextId` carries
//! over between turns, and a task the agent left `input-required` is
//! continued by the next turn.

use anyhow::{Result, bail};
use molecule_client::{Client, ClientError, Method};
use serde_json::{Value, json};
use uuid::Uuid;

/// What a conversation remembers between turns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversation {
    pub context_id: Option<String>,
    /// Set while the agent waits for an answer (`input-required`).
    pub task_id: Option<String>,
}

/// One piece of an answer, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text of the answer (an artifact or a message part).
    Text(String),
    /// The agent asks something back (the task is `input-required`).
    Question(String),
    /// The task's state changed (`working`, `completed`, …).
    State(String),
}

/// Sends `text` to `target` and streams the answer into `out`; the task's
/// final state (`completed`, `input-required`, `failed`, …).
pub async fn send(
    c: &Client,
    target: Uuid,
    text: &str,
    conv: &mut Conversation,
    mut out: impl FnMut(Piece),
) -> Result<String> {
    let mut message = json!({
        "role": "user",
        "messageId": Uuid::new_v4().to_string(),
        "parts": [{ "kind": "text", "text": text }],
    });
    if let Some(ctx) = &conv.context_id {
        message["contextId"] = json!(ctx);
    }
    if let Some(task) = conv.task_id.take() {
        message["taskId"] = json!(task);
    }
    let body = json!({
        "jsonrpc": "2.0",
        "id": Uuid::new_v4().to_string(),
        "method": "message/stream",
        "params": { "message": message },
    });
    let mut r = c
        .raw(Method::POST, format!("/workspaces/{target}/a2a"))
        .json(&body)
        .send_streaming()
        .await?;
    if r.status >= 400 {
        let whole = r.collect().await?;
        return Err(ClientError::from_http(whole.status, &whole.body).into());
    }
    let mut turn = Turn::default();
    if !r
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/event-stream"))
    {
        // An agent that does not stream answers `message/stream` like
        // `message/send`: one JSON-RPC response.
        let whole = r.collect().await?;
        let v: Value = serde_json::from_slice(&whole.body)
            .map_err(|_| anyhow::anyhow!("the agent's answer is not JSON: {}", whole.text()))?;
        turn.apply(&v, &mut out)?;
    } else {
        let mut sse = Sse::default();
        'read: while let Some(chunk) = r.chunk().await? {
            for data in sse.feed(&chunk) {
                let v: Value = match serde_json::from_str(&data) {
                    Ok(v) => v,
                    Err(_) => bail!("the agent sent an event that is not JSON: {data}"),
                };
                if turn.apply(&v, &mut out)? {
                    break 'read;
                }
            }
        }
    }
    if turn.context_id.is_some() {
        conv.context_id = turn.context_id;
    }
    if turn.state == "input-required" {
        conv.task_id = turn.task_id;
    }
    Ok(if turn.state.is_empty() {
        "completed".to_string()
    } else {
        turn.state
    })
}

/// What one turn's events said so far.
#[derive(Default)]
struct Turn {
    state: String,
    task_id: Option<String>,
    context_id: Option<String>,
}

impl Turn {
    /// Takes one JSON-RPC response (or stream event); `true` once the turn
    /// is over.
    fn apply(&mut self, v: &Value, out: &mut impl FnMut(Piece)) -> Result<bool> {
        if let Some(e) = v.get("error") {
            let message = e["message"].as_str().unwrap_or("error");
            bail!("the agent answered {} {message}", e["code"]);
        }
        let r = &v["result"];
        if let Some(ctx) = r["contextId"].as_str() {
            self.context_id = Some(ctx.to_string());
        }
        match r["kind"].as_str().unwrap_or_default() {
            "message" => {
                out(Piece::Text(parts_text(&r["parts"])));
                self.state = "completed".into();
                Ok(true)
            }
            "task" => {
                self.task_id = r["id"].as_str().map(str::to_owned);
                for artifact in r["artifacts"].as_array().into_iter().flatten() {
                    let t = parts_text(&artifact["parts"]);
                    if !t.is_empty() {
                        out(Piece::Text(t));
                    }
                }
                Ok(self.status(&r["status"], out))
            }
            "status-update" => {
                self.task_id = r["taskId"]
                    .as_str()
                    .map(str::to_owned)
                    .or(self.task_id.take());
                let done = self.status(&r["status"], out);
                Ok(done || r["final"].as_bool().unwrap_or(false))
            }
            "artifact-update" => {
                let t = parts_text(&r["artifact"]["parts"]);
                if !t.is_empty() {
                    out(Piece::Text(t));
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// Records a task status; `true` when it ends the turn.
    fn status(&mut self, status: &Value, out: &mut impl FnMut(Piece)) -> bool {
        let Some(state) = status["state"].as_str() else {
            return false;
        };
        if state != self.state {
            out(Piece::State(state.to_string()));
        }
        self.state = state.to_string();
        let said = parts_text(&status["message"]["parts"]);
        if !said.is_empty() {
            out(if state == "input-required" {
                Piece::Question(said)
            } else {
                Piece::Text(said)
            });
        }
        matches!(
            state,
            "completed" | "failed" | "canceled" | "rejected" | "input-required" | "auth-required"
        )
    }
}

/// The text parts of an A2A `parts` array, joined.
fn parts_text(parts: &Value) -> String {
    parts
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join("")
}

/// Server-sent events: bytes in, each event's `data` out.
#[derive(Default)]
pub struct Sse {
    buf: Vec<u8>,
}

impl Sse {
    /// Feeds a chunk; the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some((end, sep)) = find_blank_line(&self.buf) {
            let block = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            self.buf.drain(..end + sep);
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                events.push(data.join("\n"));
            }
        }
        events
    }
}

/// Where the first event ends and how long its separator is.
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_across_chunks_and_line_endings() {
        let mut sse = Sse::default();
        assert!(sse.feed(b"data: {\"a\"").is_empty());
        assert_eq!(sse.feed(b":1}\n\nda"), vec!["{\"a\":1}"]);
        assert_eq!(
            sse.feed(b"ta: x\r\ndata: y\r\n\r\n: comment\n\n"),
            vec!["x\ny"]
        );
    }

    #[test]
    fn a_stream_of_task_events_becomes_pieces_and_ends_on_the_final_state() {
        let mut turn = Turn::default();
        let mut got = Vec::new();
        let mut out = |p| got.push(p);
        let events = [
            json!({"result": {"kind": "task", "id": "t1", "contextId": "c1", "status": {"state": "submitted"}}}),
            json!({"result": {"kind": "status-update", "taskId": "t1", "status": {"state": "working"}, "final": false}}),
            json!({"result": {"kind": "artifact-update", "taskId": "t1", "artifact": {"parts": [{"kind": "text", "text": "echo: hi"}]}}}),
            json!({"result": {"kind": "status-update", "taskId": "t1", "status": {"state": "completed"}, "final": true}}),
        ];
        let ends: Vec<bool> = events
            .iter()
            .map(|e| turn.apply(e, &mut out).unwrap())
            .collect();
        assert_eq!(ends, [false, false, false, true]);
        assert_eq!(
            got,
            [
                Piece::State("submitted".into()),
                Piece::State("working".into()),
                Piece::Text("echo: hi".into()),
                Piece::State("completed".into()),
            ]
        );
        assert_eq!(turn.context_id.as_deref(), Some("c1"));
        let err = Turn::default()
            .apply(
                &json!({"error": {"code": -32001, "message": "Task not found"}}),
                &mut |_| {},
            )
            .unwrap_err();
        assert!(err.to_string().contains("Task not found"), "{err}");
    }

    #[test]
    fn a_question_keeps_the_task_for_the_next_turn() {
        let mut turn = Turn::default();
        let mut got = Vec::new();
        let ask = json!({"result": {"kind": "status-update", "taskId": "t9", "contextId": "c9",
            "status": {"state": "input-required", "message": {"parts": [{"kind": "text", "text": "which one?"}]}}, "final": true}});
        assert!(turn.apply(&ask, &mut |p| got.push(p)).unwrap());
        assert_eq!(got[1], Piece::Question("which one?".into()));
        assert_eq!(turn.task_id.as_deref(), Some("t9"));
    }
}
