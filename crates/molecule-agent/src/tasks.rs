//! The in-memory task store behind `tasks/get` and `tasks/cancel`: each task's
//! current A2A object and the switch that cancels its execution.
//!
//! It is bounded: past its capacity the oldest finished task is forgotten (the
//! oldest task of all if none has finished). It owns the state rule: a task
//! leaves `working` once, for `completed`, `failed` or `canceled`, and whichever
//! comes first wins. It runs nothing; `runner.rs` does.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

use crate::a2a::{Artifact, Message, Task, TaskState, TaskStatus, new_id, text_part};

/// Default number of tasks remembered.
pub const DEFAULT_CAPACITY: usize = 1000;

/// Why a cancel was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelError {
    NotFound,
    NotCancelable(TaskState),
}

#[derive(Debug)]
struct Entry {
    task: Task,
    cancel: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct Inner {
    tasks: HashMap<String, Entry>,
    /// Ids in insertion order, for eviction.
    order: VecDeque<String>,
}

/// See the module docs.
#[derive(Debug)]
pub struct TaskStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl TaskStore {
    pub fn new(capacity: usize) -> TaskStore {
        TaskStore {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each critical section leaves the maps consistent, so a panic in
        // another holder does not make them unusable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores a new working task; returns the receiver its execution watches
    /// for cancellation.
    pub fn insert(&self, task: Task) -> watch::Receiver<bool> {
        let (cancel, cancelled) = watch::channel(false);
        let mut inner = self.lock();
        while inner.tasks.len() >= self.capacity {
            let victim = inner
                .order
                .iter()
                .position(|id| {
                    inner
                        .tasks
                        .get(id)
                        .is_none_or(|e| e.task.status.state.is_terminal())
                })
                .unwrap_or(0);
            match inner.order.remove(victim) {
                Some(id) => {
                    inner.tasks.remove(&id);
                }
                None => break,
            }
        }
        inner.order.push_back(task.id.clone());
        inner.tasks.insert(task.id.clone(), Entry { task, cancel });
        cancelled
    }

    pub fn get(&self, id: &str) -> Option<Task> {
        self.lock().tasks.get(id).map(|e| e.task.clone())
    }

    /// Adds `text` to the task's reply artifact (created on first use), unless
    /// the task already ended.
    pub fn append_reply(&self, id: &str, text: &str) {
        let mut inner = self.lock();
        let Some(entry) = inner.tasks.get_mut(id) else {
            return;
        };
        if entry.task.status.state.is_terminal() {
            return;
        }
        match entry.task.artifacts.first_mut() {
            Some(artifact) => {
                if let Some(existing) = artifact.parts.first_mut().and_then(|p| p.get_mut("text")) {
                    let joined = format!("{}{text}", existing.as_str().unwrap_or_default());
                    *existing = serde_json::Value::String(joined);
                }
            }
            None => entry.task.artifacts.push(Artifact {
                artifact_id: reply_artifact_id(id),
                name: "reply".into(),
                parts: vec![text_part(text)],
            }),
        }
    }

    /// Ends a working task: `completed` with its reply in the history, or
    /// `failed` with the error as the status message. Returns the task as it
    /// now stands; a task that already ended (canceled) is left unchanged.
    pub fn finish(&self, id: &str, result: Result<(), String>) -> Option<Task> {
        let mut inner = self.lock();
        let entry = inner.tasks.get_mut(id)?;
        let task = &mut entry.task;
        if !task.status.state.is_terminal() {
            match result {
                Ok(()) => {
                    if task.artifacts.is_empty() {
                        task.artifacts.push(Artifact {
                            artifact_id: reply_artifact_id(id),
                            name: "reply".into(),
                            parts: vec![text_part("")],
                        });
                    }
                    let reply = task.artifacts[0].parts.first().cloned();
                    let mut message = Message::agent_text("", &task.id, &task.context_id);
                    message.parts = reply.into_iter().collect();
                    task.history.push(message);
                    task.status = TaskStatus::now(TaskState::Completed, None);
                }
                Err(error) => {
                    let message = Message::agent_text(&error, &task.id, &task.context_id);
                    task.status = TaskStatus::now(TaskState::Failed, Some(message));
                }
            }
        }
        Some(task.clone())
    }

    /// Cancels a task that has not ended: marks it `canceled` at once and
    /// tells its execution to stop.
    pub fn cancel(&self, id: &str) -> Result<Task, CancelError> {
        let mut inner = self.lock();
        let entry = inner.tasks.get_mut(id).ok_or(CancelError::NotFound)?;
        let state = entry.task.status.state;
        if state.is_terminal() {
            return Err(CancelError::NotCancelable(state));
        }
        entry.task.status = TaskStatus::now(TaskState::Canceled, None);
        // A closed channel means the execution already stopped: nothing to tell.
        let _ = entry.cancel.send(true);
        Ok(entry.task.clone())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().tasks.len()
    }
}

/// The reply artifact's id: stable per task, so appended chunks name the
/// same artifact.
fn reply_artifact_id(task_id: &str) -> String {
    format!("{task_id}-reply")
}

/// A new working task for `message` (the caller's message, kept in history).
pub fn new_task(message: Message, context_id: String) -> Task {
    Task {
        kind: "task",
        id: new_id(),
        context_id,
        status: TaskStatus::now(TaskState::Working, None),
        artifacts: Vec::new(),
        history: vec![message],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn working() -> Task {
        new_task(Message::agent_text("in", "t", "c"), "c".into())
    }

    fn reply_text(task: &Task) -> &str {
        task.artifacts[0].parts[0]["text"]
            .as_str()
            .unwrap_or("<none>")
    }

    #[test]
    fn finishing_records_the_reply_or_the_error() {
        let store = TaskStore::new(10);
        let ok = working();
        let failed = working();
        let _rx1 = store.insert(ok.clone());
        let _rx2 = store.insert(failed.clone());
        store.append_reply(&ok.id, "echo: ");
        store.append_reply(&ok.id, "hi");
        let done = store.finish(&ok.id, Ok(())).expect("task exists");
        assert_eq!(done.status.state, TaskState::Completed);
        assert_eq!(reply_text(&done), "echo: hi");
        assert_eq!(done.history.len(), 2);
        assert_eq!(done.history[1].role, "agent");

        let done = store
            .finish(&failed.id, Err("boom".into()))
            .expect("task exists");
        assert_eq!(done.status.state, TaskState::Failed);
        let message = done.status.message.expect("failed tasks say why");
        assert_eq!(message.parts[0]["text"], "boom");

        let empty = working();
        let _rx3 = store.insert(empty.clone());
        let done = store.finish(&empty.id, Ok(())).expect("task exists");
        assert_eq!(
            reply_text(&done),
            "",
            "a completed task always has a reply artifact"
        );
    }

    #[test]
    fn cancel_wins_over_a_later_finish_and_only_once() {
        let store = TaskStore::new(10);
        let task = working();
        let mut cancelled = store.insert(task.clone());
        assert!(!*cancelled.borrow_and_update());
        let canceled = store.cancel(&task.id).expect("working tasks cancel");
        assert_eq!(canceled.status.state, TaskState::Canceled);
        assert!(*cancelled.borrow_and_update(), "the execution is told");
        store.append_reply(&task.id, "late");
        let after = store.finish(&task.id, Ok(())).expect("task exists");
        assert_eq!(after.status.state, TaskState::Canceled);
        assert!(after.artifacts.is_empty());
        assert_eq!(
            store.cancel(&task.id).unwrap_err(),
            CancelError::NotCancelable(TaskState::Canceled)
        );
        assert_eq!(store.cancel("nope").unwrap_err(), CancelError::NotFound);
    }

    #[test]
    fn capacity_evicts_finished_tasks_first() {
        let store = TaskStore::new(3);
        let tasks: Vec<Task> = (0..3).map(|_| working()).collect();
        let _rx: Vec<_> = tasks.iter().map(|t| store.insert(t.clone())).collect();
        store.finish(&tasks[1].id, Ok(()));
        let fourth = working();
        let _rx4 = store.insert(fourth.clone());
        assert_eq!(store.len(), 3);
        assert!(
            store.get(&tasks[1].id).is_none(),
            "the finished one goes first"
        );
        assert!(store.get(&tasks[0].id).is_some());

        // With every task running, the oldest goes.
        let fifth = working();
        let _rx5 = store.insert(fifth.clone());
        assert_eq!(store.len(), 3);
        assert!(store.get(&tasks[0].id).is_none());
        assert!(store.get(&fifth.id).is_some());
    }
}
