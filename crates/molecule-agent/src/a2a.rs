//! The A2A v0.3 wire shapes this agent produces (spec/a2a.md §2.3): tasks,
//! messages, artifacts and the two streaming update events, plus reading the
//! text out of an incoming message.
//!
//! Outgoing objects are typed and carry their `kind` discriminator. Incoming
//! messages are kept as JSON (`Value`) so the history echoes back whatever
//! metadata a caller attached; only their text is interpreted. The v1.0 shapes
//! (no `kind`, SCREAMING_SNAKE_CASE enums) are not produced.

use serde::Serialize;
use serde_json::{Value, json};

/// v0.3 task states, serialised as the spec's kebab-case strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskState {
    Submitted,
    Working,
    InputRequired,
    Completed,
    Canceled,
    Failed,
    Rejected,
    AuthRequired,
    Unknown,
}

impl TaskState {
    /// Terminal states never change again; a task in one cannot be canceled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Canceled | TaskState::Failed | TaskState::Rejected
        )
    }
}

/// `TaskStatus`: the state, when it was entered and an optional agent message
/// (the error text of a failed task).
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    pub state: TaskState,
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

impl TaskStatus {
    pub fn now(state: TaskState, message: Option<Message>) -> TaskStatus {
        TaskStatus {
            state,
            timestamp: timestamp_now(),
            message,
        }
    }
}

/// A v0.3 `Message`. `parts` are JSON so incoming parts of any kind survive.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub kind: &'static str,
    pub role: &'static str,
    pub parts: Vec<Value>,
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl Message {
    /// An agent message holding one text part.
    pub fn agent_text(text: &str, task_id: &str, context_id: &str) -> Message {
        Message {
            kind: "message",
            role: "agent",
            parts: vec![text_part(text)],
            message_id: new_id(),
            task_id: Some(task_id.to_owned()),
            context_id: Some(context_id.to_owned()),
            metadata: None,
        }
    }
}

/// A v0.3 `Artifact`: the reply of a task.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub artifact_id: String,
    pub name: String,
    pub parts: Vec<Value>,
}

/// A v0.3 `Task`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub kind: &'static str,
    pub id: String,
    pub context_id: String,
    pub status: TaskStatus,
    pub artifacts: Vec<Artifact>,
    pub history: Vec<Message>,
}

impl Task {
    /// A copy whose history keeps only the last `length` messages, as
    /// `historyLength` asks.
    pub fn with_history_length(mut self, length: Option<usize>) -> Task {
        if let Some(length) = length {
            let skip = self.history.len().saturating_sub(length);
            self.history.drain(..skip);
        }
        self
    }
}

/// `TaskStatusUpdateEvent` of a stream; `final` marks the last event.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusUpdate {
    pub kind: &'static str,
    pub task_id: String,
    pub context_id: String,
    pub status: TaskStatus,
    #[serde(rename = "final")]
    pub is_final: bool,
}

impl StatusUpdate {
    pub fn of(task: &Task, is_final: bool) -> StatusUpdate {
        StatusUpdate {
            kind: "status-update",
            task_id: task.id.clone(),
            context_id: task.context_id.clone(),
            status: task.status.clone(),
            is_final,
        }
    }
}

/// `TaskArtifactUpdateEvent`: one chunk of the reply. `append` is true for
/// every chunk after the first; `lastChunk` closes the artifact.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactUpdate {
    pub kind: &'static str,
    pub task_id: String,
    pub context_id: String,
    pub artifact: Artifact,
    pub append: bool,
    pub last_chunk: bool,
}

/// One event of a `message/stream` or `tasks/resubscribe` answer.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum StreamEvent {
    /// The whole task: the first event of a resubscription.
    Task(Task),
    Status(StatusUpdate),
    Artifact(ArtifactUpdate),
}

impl StreamEvent {
    /// True for the event after which the stream closes.
    pub fn is_final(&self) -> bool {
        matches!(self, StreamEvent::Status(update) if update.is_final)
    }
}

/// `{kind: "text", text}`.
pub fn text_part(text: &str) -> Value {
    json!({ "kind": "text", "text": text })
}

/// The text an incoming message carries: its text parts (marked
/// `kind:"text"`, the delegation variant `type:"text"`, or unmarked with a
/// `text` string, as GitHub-sourced messages are), plus data parts as JSON,
/// joined by newlines. `None` when there is nothing textual.
pub fn message_text(parts: &[Value]) -> Option<String> {
    let mut pieces = Vec::new();
    for part in parts {
        let marker = part
            .get("kind")
            .or_else(|| part.get("type"))
            .and_then(Value::as_str);
        match (marker, part.get("text"), part.get("data")) {
            (Some("text") | None, Some(Value::String(text)), _) => pieces.push(text.clone()),
            (Some("data"), _, Some(data)) => pieces.push(data.to_string()),
            _ => {}
        }
    }
    if pieces.is_empty() {
        None
    } else {
        Some(pieces.join("\n"))
    }
}

/// A fresh random id (UUID v4) for tasks, contexts, messages and artifacts.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// RFC 3339 UTC with milliseconds, as A2A timestamps are written.
pub fn timestamp_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_reads_every_text_part_variant() {
        let cases = [
            (json!([{"kind": "text", "text": "a"}]), Some("a")),
            (json!([{"type": "text", "text": "b"}]), Some("b")),
            (json!([{"text": "c"}]), Some("c")),
            (
                json!([{"kind": "text", "text": "x"}, {"kind": "text", "text": "y"}]),
                Some("x\ny"),
            ),
            (
                json!([{"kind": "data", "data": {"k": 1}}]),
                Some("{\"k\":1}"),
            ),
            (json!([{"kind": "file", "file": {"uri": "u"}}]), None),
            (json!([{"kind": "text", "text": 5}]), None),
            (json!([]), None),
        ];
        for (parts, want) in cases {
            let parts = parts.as_array().cloned().unwrap_or_default();
            assert_eq!(message_text(&parts).as_deref(), want, "{parts:?}");
        }
    }

    #[test]
    fn terminal_states_are_the_four_final_ones() {
        use TaskState::*;
        for (state, terminal) in [
            (Submitted, false),
            (Working, false),
            (InputRequired, false),
            (AuthRequired, false),
            (Unknown, false),
            (Completed, true),
            (Canceled, true),
            (Failed, true),
            (Rejected, true),
        ] {
            assert_eq!(state.is_terminal(), terminal, "{state:?}");
        }
    }

    #[test]
    fn objects_serialise_with_their_kind_and_v03_names() {
        let task = Task {
            kind: "task",
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus::now(TaskState::InputRequired, None),
            artifacts: vec![],
            history: vec![Message::agent_text("hi", "t", "c")],
        };
        let value = serde_json::to_value(&task).unwrap_or_default();
        assert_eq!(value["kind"], "task");
        assert_eq!(value["contextId"], "c");
        assert_eq!(value["status"]["state"], "input-required");
        assert_eq!(value["history"][0]["kind"], "message");
        assert_eq!(value["history"][0]["role"], "agent");
        assert_eq!(
            value["history"][0]["parts"][0],
            json!({"kind": "text", "text": "hi"})
        );
        let update = serde_json::to_value(StatusUpdate::of(&task, true)).unwrap_or_default();
        assert_eq!(update["kind"], "status-update");
        assert_eq!(update["final"], true);
        assert_eq!(update["taskId"], "t");
    }

    #[test]
    fn history_length_keeps_the_latest_messages() {
        let message = |text: &str| Message::agent_text(text, "t", "c");
        let task = Task {
            kind: "task",
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus::now(TaskState::Completed, None),
            artifacts: vec![],
            history: vec![message("1"), message("2"), message("3")],
        };
        let texts = |task: &Task| -> Vec<String> {
            task.history
                .iter()
                .map(|m| m.parts[0]["text"].as_str().unwrap_or("").to_owned())
                .collect()
        };
        assert_eq!(
            texts(&task.clone().with_history_length(None)),
            ["1", "2", "3"]
        );
        assert_eq!(
            texts(&task.clone().with_history_length(Some(2))),
            ["2", "3"]
        );
        assert_eq!(
            texts(&task.clone().with_history_length(Some(0))),
            Vec::<String>::new()
        );
        assert_eq!(texts(&task.with_history_length(Some(9))), ["1", "2", "3"]);
    }
}
