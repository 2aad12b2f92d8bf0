//! The A2A methods' semantics: starting an execution per message, answering
//! `message/send` when it ends (or at once for `blocking: false`), feeding
//! `message/stream` its events, and `tasks/get` / `tasks/cancel`.
//!
//! Every execution runs in its own tokio task, so a caller that hangs up does
//! not cancel the work (spec/a2a.md §2.5: disconnecting never cancels); only
//! `tasks/cancel` does, through the task store's switch. The runner parses
//! method params; JSON-RPC framing stays in `jsonrpc.rs`, HTTP in `http.rs`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::a2a::{
    Artifact, ArtifactUpdate, Message, StatusUpdate, StreamEvent, Task, message_text, new_id,
    text_part,
};
use crate::executor::Executor;
use crate::jsonrpc::{RpcError, TASK_NOT_CANCELABLE, TASK_NOT_FOUND};
use crate::stats::{Outcome, Stats};
use crate::tasks::{CancelError, TaskStore, new_task};

/// Events buffered per stream before the execution waits for the caller.
const STREAM_BUFFER: usize = 64;

/// `MessageSendParams`, as far as this agent reads it.
#[derive(Debug, Deserialize)]
struct SendParams {
    message: IncomingMessage,
    #[serde(default)]
    configuration: Option<SendConfiguration>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IncomingMessage {
    #[serde(default)]
    parts: Vec<Value>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
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

    /// `message/send`: the finished task, or the working one when the caller
    /// asked for `blocking: false`.
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

    /// `message/stream`: the events of a new task, ending with its final
    /// status update.
    pub fn stream(&self, params: Value) -> Result<mpsc::Receiver<StreamEvent>, RpcError> {
        let params: SendParams = parse_params(params)?;
        let (events, receiver) = mpsc::channel(STREAM_BUFFER);
        self.start(params.message, Some(events))?;
        Ok(receiver)
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

    /// Creates the task and spawns its execution.
    fn start(
        &self,
        message: IncomingMessage,
        events: Option<mpsc::Sender<StreamEvent>>,
    ) -> Result<(Task, tokio::task::JoinHandle<()>), RpcError> {
        let input = message_text(&message.parts)
            .ok_or_else(|| RpcError::invalid_params("message has no text part"))?;
        let context_id = message.context_id.clone().unwrap_or_else(new_id);
        let mut task = new_task(
            Message {
                kind: "message",
                role: "user",
                parts: message.parts,
                message_id: message.message_id.unwrap_or_else(new_id),
                task_id: None,
                context_id: Some(context_id.clone()),
                metadata: message.metadata,
            },
            context_id,
        );
        task.history[0].task_id = Some(task.id.clone());
        let cancelled = self.tasks.insert(task.clone());
        let execution = Execution {
            runner: self.clone(),
            task: task.clone(),
            events,
        };
        let handle = tokio::spawn(execution.run(input, cancelled));
        Ok((task, handle))
    }
}

/// One message being worked on.
struct Execution {
    runner: Runner,
    task: Task,
    events: Option<mpsc::Sender<StreamEvent>>,
}

impl Execution {
    async fn run(self, input: String, mut cancelled: watch::Receiver<bool>) {
        let active = self.runner.stats.begin(&input);
        self.emit(StreamEvent::Status(StatusUpdate::of(&self.task, false)))
            .await;

        let (chunks, mut chunk_rx) = mpsc::channel::<String>(16);
        let work = async {
            let forward = async {
                // Each chunk is sent once the next one exists, so the last
                // one can be marked `lastChunk`.
                let mut held: Option<String> = None;
                let mut sent = 0usize;
                while let Some(chunk) = chunk_rx.recv().await {
                    self.runner.tasks.append_reply(&self.task.id, &chunk);
                    if let Some(previous) = held.replace(chunk) {
                        self.emit_chunk(previous, sent > 0, false).await;
                        sent += 1;
                    }
                }
                (held, sent)
            };
            let run = async {
                let result = self.runner.executor.run(&input, &chunks).await;
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
        if result.is_ok() {
            self.emit_chunk(held.unwrap_or_default(), sent > 0, true)
                .await;
        }
        let outcome = match &result {
            Ok(()) => Outcome::Succeeded,
            Err(e) => Outcome::Failed(e.0.clone()),
        };
        if let Outcome::Failed(error) = &outcome {
            tracing::warn!(task_id = %self.task.id, executor = self.runner.executor.kind(), %error, "task failed");
        }
        let finished = self
            .runner
            .tasks
            .finish(&self.task.id, result.map_err(|e| e.0));
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
                artifact_id: format!("{}-reply", self.task.id),
                name: "reply".into(),
                parts: vec![text_part(&text)],
            },
            append,
            last_chunk,
        };
        self.emit(StreamEvent::Artifact(update)).await;
    }

    /// Sends a stream event, if anyone streams this task; a caller that hung
    /// up is not an error.
    async fn emit(&self, event: StreamEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event).await;
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
