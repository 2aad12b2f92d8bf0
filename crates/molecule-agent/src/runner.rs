//! The A2A methods' semantics: starting a turn per message (a new task, or
//! the next turn of an interrupted one), answering `message/send` when the
//! turn ends (or at once for `blocking: false`), feeding `message/stream` and
//! `tasks/resubscribe` their events, and `tasks/get` / `tasks/cancel`.
//!
//! Every execution runs in its own tokio task, so a caller that hangs up does
//! not cancel the work (spec/a2a.md §2.5: disconnecting never cancels); only
//! `tasks/cancel` does, through the task store's switch. The runner parses
//! and validates method params; JSON-RPC framing stays in `jsonrpc.rs`, HTTP
//! in `http.rs`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

use crate::a2a::{
    Artifact, ArtifactUpdate, Message, StatusUpdate, StreamEvent, Task, TaskState, message_text,
    new_id, text_part,
};
use crate::executor::{Executor, Prompt, Reply};
use crate::jsonrpc::{RpcError, TASK_NOT_CANCELABLE, TASK_NOT_FOUND, UNSUPPORTED_OPERATION};
use crate::stats::{Outcome, Stats};
use crate::tasks::{CancelError, ContinueError, TaskStore, TurnEnd, new_task, reply_artifact_id};

/// Events buffered per stream before the execution waits for the caller.
const STREAM_BUFFER: usize = 64;

/// `MessageSendParams`, as far as this agent reads it.
#[derive(Debug, Deserialize)]
struct SendParams {
    message: IncomingMessage,
    #[serde(default)]
    configuration: Option<SendConfiguration>,
}

/// A `Message` as sent; required fields are checked by [`validate`] so a
/// missing one is named in the error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IncomingMessage {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    parts: Option<Vec<Value>>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
}

/// A message that passed validation: the history entry, its text, and the
/// task and context it names.
struct Validated {
    message: Message,
    input: String,
    task_id: Option<String>,
    context_id: Option<String>,
}

/// The spec's required `Message` fields: `messageId`, `role` (`user` or
/// `agent`), `parts` with something textual; `kind`, when given, is
/// `message`.
fn validate(message: IncomingMessage) -> Result<Validated, RpcError> {
    if message.kind.as_deref().is_some_and(|k| k != "message") {
        return Err(RpcError::invalid_params("message.kind must be \"message\""));
    }
    let role = match message.role.as_deref() {
        Some("user") => "user",
        Some("agent") => "agent",
        Some(_) => {
            return Err(RpcError::invalid_params(
                "message.role must be \"user\" or \"agent\"",
            ));
        }
        None => return Err(RpcError::invalid_params("message.role is required")),
    };
    let message_id = message
        .message_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| RpcError::invalid_params("message.messageId is required"))?;
    let parts = message
        .parts
        .ok_or_else(|| RpcError::invalid_params("message.parts is required"))?;
    let input =
        message_text(&parts).ok_or_else(|| RpcError::invalid_params("message has no text part"))?;
    Ok(Validated {
        message: Message {
            kind: "message",
            role,
            parts,
            message_id,
            task_id: message.task_id.clone(),
            context_id: message.context_id.clone(),
            metadata: message.metadata,
        },
        input,
        task_id: message.task_id,
        context_id: message.context_id,
    })
}

#[derive(Debug, Deserialize)]
struct SendConfiguration {
    #[serde(default)]
    blocking: Option<bool>,
}

/// `TaskQueryParams` / `TaskIdParams`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskParams {
    id: String,
    #[serde(default)]
    history_length: Option<usize>,
}

/// See the module docs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Runner {
    executor: Arc<Executor>,
    tasks: Arc<TaskStore>,
    stats: Arc<Stats>,
}

impl Runner {
    pub fn new(executor: Executor, task_capacity: usize, stats: Arc<Stats>) -> Runner {
        Runner {
            executor: Arc::new(executor),
            tasks: Arc::new(TaskStore::new(task_capacity)),
            stats,
        }
    }

    /// `message/send`: the task once the turn ends (completed, failed,
    /// canceled or input-required), or at once when the caller asked for
    /// `blocking: false`.
    pub async fn send(&self, params: Value) -> Result<Task, RpcError> {
        let params: SendParams = parse_params(params)?;
        let blocking = params
            .configuration
            .as_ref()
            .and_then(|c| c.blocking)
            .unwrap_or(true);
        let (task, execution) = self.start(params.message, None)?;
        if !blocking {
            return Ok(task);
        }
        // A JoinError means the execution panicked; the store still says
        // what became of the task.
        let _ = execution.await;
        self.tasks
            .get(&task.id)
            .ok_or_else(|| RpcError::new(TASK_NOT_FOUND, "task was evicted before it finished"))
    }

    /// `message/stream`: the events of the turn, ending with its final
    /// status update.
    pub fn stream(&self, params: Value) -> Result<mpsc::Receiver<StreamEvent>, RpcError> {
        let params: SendParams = parse_params(params)?;
        let (events, receiver) = mpsc::channel(STREAM_BUFFER);
        self.start(params.message, Some(events))?;
        Ok(receiver)
    }

    /// `tasks/resubscribe`: the task as it stands, then its events up to the
    /// final one. A task waiting for input gets its final status at once;
    /// a terminal one is refused (spec/a2a.md §2.2).
    pub fn resubscribe(&self, params: Value) -> Result<mpsc::Receiver<StreamEvent>, RpcError> {
        let params: TaskParams = parse_params(params)?;
        let (task, mut later) = self.tasks.subscribe(&params.id).map_err(continue_error)?;
        let (events, receiver) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            let working = task.status.state == TaskState::Working;
            let interrupted = StreamEvent::Status(StatusUpdate::of(&task, true));
            if events.send(StreamEvent::Task(task)).await.is_err() {
                return;
            }
            if !working {
                let _ = events.send(interrupted).await;
                return;
            }
            loop {
                match later.recv().await {
                    Ok(event) => {
                        let last = event.is_final();
                        if events.send(event).await.is_err() || last {
                            return;
                        }
                    }
                    // Events lost to a slow reader are lost, as the spec
                    // allows; the final one is still to come.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(receiver)
    }

    /// `GET /transcript`: what was said after `since`, at most `limit`.
    pub fn transcript(&self, since: u64, limit: usize) -> Vec<crate::tasks::TranscriptEntry> {
        self.tasks.transcript(since, limit)
    }

    /// `tasks/get`.
    pub fn get(&self, params: Value) -> Result<Task, RpcError> {
        let params: TaskParams = parse_params(params)?;
        let task = self.tasks.get(&params.id).ok_or_else(task_not_found)?;
        Ok(task.with_history_length(params.history_length))
    }

    /// `tasks/cancel`.
    pub fn cancel(&self, params: Value) -> Result<Task, RpcError> {
        let params: TaskParams = parse_params(params)?;
        match self.tasks.cancel(&params.id) {
            Ok(task) => Ok(task),
            Err(CancelError::NotFound) => Err(task_not_found()),
            Err(CancelError::NotCancelable(state)) => Err(RpcError::new(
                TASK_NOT_CANCELABLE,
                format!("task cannot be canceled: it is {}", state_name(state)),
            )),
        }
    }

    /// Starts a turn: a new task, or the next turn of the task the message
    /// names; spawns its execution.
    fn start(
        &self,
        message: IncomingMessage,
        events: Option<mpsc::Sender<StreamEvent>>,
    ) -> Result<(Task, tokio::task::JoinHandle<()>), RpcError> {
        let incoming = validate(message)?;
        let turn = match incoming.task_id {
            Some(task_id) => self
                .tasks
                .continue_with(&task_id, incoming.context_id.as_deref(), incoming.message)
                .map_err(continue_error)?,
            None => {
                let context_id = incoming.context_id.unwrap_or_else(new_id);
                let mut task = new_task(incoming.message, context_id.clone());
                task.history[0].task_id = Some(task.id.clone());
                task.history[0].context_id = Some(context_id);
                self.tasks.insert(task)
            }
        };
        let history = self.tasks.conversation(&turn.task);
        let execution = Execution {
            runner: self.clone(),
            task: turn.task.clone(),
            turn: turn.number,
            events,
        };
        let handle = tokio::spawn(execution.run(incoming.input, history, turn.cancelled));
        Ok((turn.task, handle))
    }
}

/// One turn being worked on.
struct Execution {
    runner: Runner,
    task: Task,
    turn: usize,
    events: Option<mpsc::Sender<StreamEvent>>,
}

impl Execution {
    async fn run(
        self,
        input: String,
        history: Vec<(String, String)>,
        mut cancelled: watch::Receiver<bool>,
    ) {
        let active = self.runner.stats.begin(&input);
        self.emit(StreamEvent::Status(StatusUpdate::of(&self.task, false)))
            .await;

        let prompt = Prompt {
            input: &input,
            history: &history,
            task_id: &self.task.id,
            context_id: &self.task.context_id,
        };
        let (chunks, mut chunk_rx) = mpsc::channel::<String>(16);
        let work = async {
            let forward = async {
                // Each chunk is sent once the next one exists, so the last
                // one can be marked `lastChunk`.
                let mut held: Option<String> = None;
                let mut sent = 0usize;
                while let Some(chunk) = chunk_rx.recv().await {
                    self.runner
                        .tasks
                        .append_reply(&self.task.id, self.turn, &chunk);
                    if let Some(previous) = held.replace(chunk) {
                        self.emit_chunk(previous, sent > 0, false).await;
                        sent += 1;
                    }
                }
                (held, sent)
            };
            let run = async {
                let result = self.runner.executor.run(prompt, &chunks).await;
                drop(chunks);
                result
            };
            tokio::join!(run, forward)
        };

        // Only a real cancel counts: a closed channel (the task was evicted)
        // disables that branch and the work goes on.
        let ended = tokio::select! {
            (result, (held, sent)) = work => Some((result, held, sent)),
            true = cancel_requested(&mut cancelled) => None,
        };
        let Some((result, held, sent)) = ended else {
            // Dropping `work` stopped the executor (and killed a child
            // process); the store already says canceled.
            active.finish(&Outcome::Canceled);
            if let Some(task) = self.runner.tasks.get(&self.task.id) {
                self.emit(StreamEvent::Status(StatusUpdate::of(&task, true)))
                    .await;
            }
            return;
        };
        let end = match result {
            Ok(Reply::Done) => {
                self.emit_chunk(held.unwrap_or_default(), sent > 0, true)
                    .await;
                TurnEnd::Completed
            }
            Ok(Reply::Ask(question)) => {
                if let Some(held) = held {
                    self.emit_chunk(held, sent > 0, true).await;
                }
                TurnEnd::InputRequired(question)
            }
            Err(error) => {
                tracing::warn!(task_id = %self.task.id, executor = self.runner.executor.kind(), %error, "task failed");
                TurnEnd::Failed(error.0)
            }
        };
        let outcome = match &end {
            TurnEnd::Failed(error) => Outcome::Failed(error.clone()),
            _ => Outcome::Succeeded,
        };
        let finished = self.runner.tasks.finish(&self.task.id, self.turn, end);
        active.finish(&outcome);
        if let Some(task) = finished {
            self.emit(StreamEvent::Status(StatusUpdate::of(&task, true)))
                .await;
        }
    }

    async fn emit_chunk(&self, text: String, append: bool, last_chunk: bool) {
        let update = ArtifactUpdate {
            kind: "artifact-update",
            task_id: self.task.id.clone(),
            context_id: self.task.context_id.clone(),
            artifact: Artifact {
                artifact_id: reply_artifact_id(&self.task.id, self.turn),
                name: "reply".into(),
                parts: vec![text_part(&text)],
            },
            append,
            last_chunk,
        };
        self.emit(StreamEvent::Artifact(update)).await;
    }

    /// Hands a stream event to the task's resubscribers and to the caller
    /// streaming this turn, if any; a caller that hung up is not an error.
    async fn emit(&self, event: StreamEvent) {
        self.runner.tasks.publish(&self.task.id, &event);
        if let Some(events) = &self.events {
            let _ = events.send(event).await;
        }
    }
}

/// The spec's errors for a message naming a task it cannot continue, and
/// for resubscribing to one.
fn continue_error(error: ContinueError) -> RpcError {
    match error {
        ContinueError::NotFound => task_not_found(),
        ContinueError::Terminal(state) => RpcError::new(
            UNSUPPORTED_OPERATION,
            format!(
                "task is {}: a terminal task takes no more messages (start a new task in its context)",
                state_name(state)
            ),
        ),
        ContinueError::Busy(state) => RpcError::new(
            UNSUPPORTED_OPERATION,
            format!(
                "task is {}: it takes a message only when it asks for input",
                state_name(state)
            ),
        ),
        ContinueError::ContextMismatch => {
            RpcError::invalid_params("message.contextId is not the task's context")
        }
    }
}

fn parse_params<T: for<'de> Deserialize<'de>>(params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params)
        .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))
}

/// True once a cancel is requested; false if the switch is gone.
async fn cancel_requested(cancelled: &mut watch::Receiver<bool>) -> bool {
    cancelled.wait_for(|c| *c).await.is_ok()
}

fn task_not_found() -> RpcError {
    RpcError::new(TASK_NOT_FOUND, "task not found")
}

fn state_name(state: crate::a2a::TaskState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
