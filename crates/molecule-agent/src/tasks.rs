//! The in-memory task store behind `tasks/get`, `tasks/cancel`,
//! `tasks/resubscribe` and multi-turn tasks: each task's current A2A object,
//! the switch that cancels its execution, and the channel its events are
//! published on for resubscribers.
//!
//! It is bounded: past its capacity the oldest finished task is forgotten (the
//! oldest task of all if none has finished). It owns the state rules of
//! spec/a2a.md §2.3: a turn leaves `working` once, for `completed`, `failed`,
//! `canceled` or the interrupted `input-required`, and whichever comes first
//! wins; only an interrupted task takes another message (a new turn), and a
//! terminal one never changes again. It runs nothing; `runner.rs` does.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{broadcast, watch};

use crate::a2a::{
    Artifact, Message, StreamEvent, Task, TaskState, TaskStatus, message_text, new_id, text_part,
};

/// Default number of tasks remembered.
pub const DEFAULT_CAPACITY: usize = 1000;

/// Events kept per task for a resubscriber that reads slowly.
const RESUBSCRIBE_BUFFER: usize = 64;
/// Transcript entries remembered (oldest dropped first).
const TRANSCRIPT_CAPACITY: usize = 10_000;

/// One message of the transcript (`GET /transcript`): every message in
/// the order it was said, numbered so a reader can ask for what follows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TranscriptEntry {
    pub seq: u64,
    pub task_id: String,
    pub context_id: String,
    pub role: &'static str,
    pub text: String,
    pub at: String,
}

/// Why a cancel was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelError {
    NotFound,
    NotCancelable(TaskState),
}

/// Why a message could not continue a task.
#[derive(Debug, Clone, PartialEq)]
pub enum ContinueError {
    NotFound,
    /// The task ended; a follow-up starts a new task in the same context.
    Terminal(TaskState),
    /// The task is still working on its current turn.
    Busy(TaskState),
    /// The message names another context than the task's.
    ContextMismatch,
}

/// How an execution's turn ended, as the store records it.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEnd {
    Completed,
    /// The agent asks the caller something; the task waits for a message.
    InputRequired(String),
    Failed(String),
}

/// A task ready to run a turn: its snapshot, the turn number (1 for the
/// first message) and the receiver its execution watches for cancellation.
#[derive(Debug)]
pub struct Turn {
    pub task: Task,
    pub number: usize,
    pub cancelled: watch::Receiver<bool>,
}

#[derive(Debug)]
struct Entry {
    task: Task,
    turn: usize,
    cancel: watch::Sender<bool>,
    events: broadcast::Sender<StreamEvent>,
}

#[derive(Debug, Default)]
struct Inner {
    tasks: HashMap<String, Entry>,
    /// Ids in insertion order, for eviction and context history.
    order: VecDeque<String>,
    transcript: VecDeque<TranscriptEntry>,
    next_seq: u64,
}

impl Inner {
    fn record(&mut self, task: &Task, message: &Message) {
        self.next_seq += 1;
        if self.transcript.len() >= TRANSCRIPT_CAPACITY {
            self.transcript.pop_front();
        }
        self.transcript.push_back(TranscriptEntry {
            seq: self.next_seq,
            task_id: task.id.clone(),
            context_id: task.context_id.clone(),
            role: message.role,
            text: message_text(&message.parts).unwrap_or_default(),
            at: crate::a2a::timestamp_now(),
        });
    }
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

    /// Stores a new working task, ready for its first turn.
    pub fn insert(&self, task: Task) -> Turn {
        let (cancel, cancelled) = watch::channel(false);
        let (events, _) = broadcast::channel(RESUBSCRIBE_BUFFER);
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
        if let Some(first) = task.history.first() {
            inner.record(&task, first);
        }
        inner.tasks.insert(
            task.id.clone(),
            Entry {
                task: task.clone(),
                turn: 1,
                cancel,
                events,
            },
        );
        Turn {
            task,
            number: 1,
            cancelled,
        }
    }

    /// Adds the caller's `message` to an interrupted task and starts its next
    /// turn.
    pub fn continue_with(
        &self,
        id: &str,
        context_id: Option<&str>,
        message: Message,
    ) -> Result<Turn, ContinueError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let entry = inner.tasks.get_mut(id).ok_or(ContinueError::NotFound)?;
        let state = entry.task.status.state;
        if state.is_terminal() {
            return Err(ContinueError::Terminal(state));
        }
        if !matches!(state, TaskState::InputRequired | TaskState::AuthRequired) {
            return Err(ContinueError::Busy(state));
        }
        if context_id.is_some_and(|c| c != entry.task.context_id) {
            return Err(ContinueError::ContextMismatch);
        }
        entry.turn += 1;
        let mut message = message;
        message.task_id = Some(entry.task.id.clone());
        message.context_id = Some(entry.task.context_id.clone());
        entry.task.history.push(message.clone());
        entry.task.status = TaskStatus::now(TaskState::Working, None);
        let turn = Turn {
            task: entry.task.clone(),
            number: entry.turn,
            cancelled: entry.cancel.subscribe(),
        };
        inner.record(&turn.task, &message);
        Ok(turn)
    }

    pub fn get(&self, id: &str) -> Option<Task> {
        self.lock().tasks.get(id).map(|e| e.task.clone())
    }

    /// The conversation before the latest message of `task`: the earlier
    /// tasks of its context (oldest first), then its own history, as
    /// `(role, text)` pairs.
    pub fn conversation(&self, task: &Task) -> Vec<(String, String)> {
        let inner = self.lock();
        let earlier = inner
            .order
            .iter()
            .take_while(|id| **id != task.id)
            .filter_map(|id| inner.tasks.get(id))
            .filter(|e| e.task.context_id == task.context_id)
            .flat_map(|e| e.task.history.iter());
        let own = task
            .history
            .iter()
            .take(task.history.len().saturating_sub(1));
        earlier
            .chain(own)
            .filter_map(|m| Some((m.role.to_owned(), message_text(&m.parts)?)))
            .collect()
    }

    /// Adds `text` to the reply artifact of turn `turn` (created on first
    /// use), unless the task already left that turn.
    pub fn append_reply(&self, id: &str, turn: usize, text: &str) {
        let mut inner = self.lock();
        let Some(entry) = inner.tasks.get_mut(id) else {
            return;
        };
        if entry.turn != turn || entry.task.status.state != TaskState::Working {
            return;
        }
        let artifact_id = reply_artifact_id(id, turn);
        match entry.task.artifacts.last_mut() {
            Some(artifact) if artifact.artifact_id == artifact_id => {
                if let Some(existing) = artifact.parts.first_mut().and_then(|p| p.get_mut("text")) {
                    let joined = format!("{}{text}", existing.as_str().unwrap_or_default());
                    *existing = serde_json::Value::String(joined);
                }
            }
            _ => entry.task.artifacts.push(Artifact {
                artifact_id,
                name: "reply".into(),
                parts: vec![text_part(text)],
            }),
        }
    }

    /// Ends turn `turn` of a working task: `completed` with its reply in the
    /// history, `input-required` with the question as the status message
    /// (and in the history), or `failed` with the error as the status
    /// message. Returns the task as it now stands; a task that already left
    /// the turn (canceled) is left unchanged.
    pub fn finish(&self, id: &str, turn: usize, end: TurnEnd) -> Option<Task> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let entry = inner.tasks.get_mut(id)?;
        let task = &mut entry.task;
        let mut said = None;
        if entry.turn == turn && task.status.state == TaskState::Working {
            match end {
                TurnEnd::Completed => {
                    let artifact_id = reply_artifact_id(id, turn);
                    if task.artifacts.last().map(|a| &a.artifact_id) != Some(&artifact_id) {
                        task.artifacts.push(Artifact {
                            artifact_id,
                            name: "reply".into(),
                            parts: vec![text_part("")],
                        });
                    }
                    let reply = task.artifacts.last().and_then(|a| a.parts.first()).cloned();
                    let mut message = Message::agent_text("", &task.id, &task.context_id);
                    message.parts = reply.into_iter().collect();
                    said = Some(message.clone());
                    task.history.push(message);
                    task.status = TaskStatus::now(TaskState::Completed, None);
                }
                TurnEnd::InputRequired(question) => {
                    let message = Message::agent_text(&question, &task.id, &task.context_id);
                    said = Some(message.clone());
                    task.history.push(message.clone());
                    task.status = TaskStatus::now(TaskState::InputRequired, Some(message));
                }
                TurnEnd::Failed(error) => {
                    let message = Message::agent_text(&error, &task.id, &task.context_id);
                    said = Some(message.clone());
                    task.status = TaskStatus::now(TaskState::Failed, Some(message));
                }
            }
        }
        let task = task.clone();
        if let Some(said) = said {
            inner.record(&task, &said);
        }
        Some(task)
    }

    /// Transcript entries after `since`, at most `limit`, oldest first.
    pub fn transcript(&self, since: u64, limit: usize) -> Vec<TranscriptEntry> {
        self.lock()
            .transcript
            .iter()
            .filter(|e| e.seq > since)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Cancels a task that has not ended: marks it `canceled` at once and
    /// tells its execution, if one runs, to stop.
    pub fn cancel(&self, id: &str) -> Result<Task, CancelError> {
        let mut inner = self.lock();
        let entry = inner.tasks.get_mut(id).ok_or(CancelError::NotFound)?;
        let state = entry.task.status.state;
        if state.is_terminal() {
            return Err(CancelError::NotCancelable(state));
        }
        entry.task.status = TaskStatus::now(TaskState::Canceled, None);
        // No receiver means no execution runs: nothing to tell.
        let _ = entry.cancel.send(true);
        Ok(entry.task.clone())
    }

    /// The task as it stands and a receiver of its later events, taken
    /// together so no event falls between the two. Refused for an unknown
    /// task and one in a terminal state.
    pub fn subscribe(
        &self,
        id: &str,
    ) -> Result<(Task, broadcast::Receiver<StreamEvent>), ContinueError> {
        let inner = self.lock();
        let entry = inner.tasks.get(id).ok_or(ContinueError::NotFound)?;
        let state = entry.task.status.state;
        if state.is_terminal() {
            return Err(ContinueError::Terminal(state));
        }
        Ok((entry.task.clone(), entry.events.subscribe()))
    }

    /// Hands `event` to the task's resubscribers, if any.
    pub fn publish(&self, id: &str, event: &StreamEvent) {
        if let Some(entry) = self.lock().tasks.get(id) {
            // No receiver is the common case, not an error.
            let _ = entry.events.send(event.clone());
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().tasks.len()
    }
}

/// The reply artifact's id: stable per task and turn, so appended chunks
/// name the same artifact and each turn has its own.
pub fn reply_artifact_id(task_id: &str, turn: usize) -> String {
    if turn <= 1 {
        format!("{task_id}-reply")
    } else {
        format!("{task_id}-reply-{turn}")
    }
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
        new_task(user("in"), "c".into())
    }

    fn reply_text(task: &Task) -> &str {
        task.artifacts[0].parts[0]["text"]
            .as_str()
            .unwrap_or("<none>")
    }

    fn user(text: &str) -> Message {
        let mut message = Message::agent_text(text, "t", "c");
        message.role = "user";
        message
    }

    #[test]
    fn finishing_records_the_reply_or_the_error() {
        let store = TaskStore::new(10);
        let ok = working();
        let failed = working();
        let _t1 = store.insert(ok.clone());
        let _t2 = store.insert(failed.clone());
        store.append_reply(&ok.id, 1, "echo: ");
        store.append_reply(&ok.id, 1, "hi");
        let done = store
            .finish(&ok.id, 1, TurnEnd::Completed)
            .expect("task exists");
        assert_eq!(done.status.state, TaskState::Completed);
        assert_eq!(reply_text(&done), "echo: hi");
        assert_eq!(done.history.len(), 2);
        assert_eq!(done.history[1].role, "agent");

        let done = store
            .finish(&failed.id, 1, TurnEnd::Failed("boom".into()))
            .expect("task exists");
        assert_eq!(done.status.state, TaskState::Failed);
        let message = done.status.message.expect("failed tasks say why");
        assert_eq!(message.parts[0]["text"], "boom");

        let empty = working();
        let _t3 = store.insert(empty.clone());
        let done = store
            .finish(&empty.id, 1, TurnEnd::Completed)
            .expect("task exists");
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
        let mut turn = store.insert(task.clone());
        assert!(!*turn.cancelled.borrow_and_update());
        let canceled = store.cancel(&task.id).expect("working tasks cancel");
        assert_eq!(canceled.status.state, TaskState::Canceled);
        assert!(*turn.cancelled.borrow_and_update(), "the execution is told");
        store.append_reply(&task.id, 1, "late");
        let after = store
            .finish(&task.id, 1, TurnEnd::Completed)
            .expect("task exists");
        assert_eq!(after.status.state, TaskState::Canceled);
        assert!(after.artifacts.is_empty());
        assert_eq!(
            store.cancel(&task.id).unwrap_err(),
            CancelError::NotCancelable(TaskState::Canceled)
        );
        assert_eq!(store.cancel("nope").unwrap_err(), CancelError::NotFound);
    }

    #[test]
    fn an_interrupted_task_takes_the_next_turn_and_a_finished_one_does_not() {
        let store = TaskStore::new(10);
        let task = working();
        let _t = store.insert(task.clone());
        assert_eq!(
            store
                .continue_with(&task.id, None, user("early"))
                .unwrap_err(),
            ContinueError::Busy(TaskState::Working),
            "a working task is not interrupted"
        );
        let asked = store
            .finish(&task.id, 1, TurnEnd::InputRequired("name?".into()))
            .expect("task exists");
        assert_eq!(asked.status.state, TaskState::InputRequired);
        let question = asked.status.message.expect("the question");
        assert_eq!(question.parts[0]["text"], "name?");
        assert_eq!(
            store
                .continue_with(&task.id, Some("other"), user("Bob"))
                .unwrap_err(),
            ContinueError::ContextMismatch
        );
        let turn = store
            .continue_with(&task.id, Some("c"), user("Bob"))
            .expect("an interrupted task continues");
        assert_eq!(turn.number, 2);
        assert_eq!(turn.task.status.state, TaskState::Working);
        assert_eq!(
            store.conversation(&turn.task),
            [
                ("user".to_owned(), "in".to_owned()),
                ("agent".into(), "name?".into())
            ],
            "the conversation before the latest message"
        );
        // A late chunk of turn 1 does not leak into turn 2's reply.
        store.append_reply(&task.id, 1, "stale");
        store.append_reply(&task.id, 2, "hi Bob");
        let done = store
            .finish(&task.id, 2, TurnEnd::Completed)
            .expect("task exists");
        assert_eq!(done.status.state, TaskState::Completed);
        assert_eq!(done.history.len(), 4, "in, name?, Bob, hi Bob");
        assert_eq!(done.artifacts.len(), 1);
        assert_eq!(
            done.artifacts[0].artifact_id,
            reply_artifact_id(&task.id, 2)
        );
        assert_eq!(
            store
                .continue_with(&task.id, None, user("again"))
                .unwrap_err(),
            ContinueError::Terminal(TaskState::Completed)
        );
        assert_eq!(
            store.continue_with("nope", None, user("x")).unwrap_err(),
            ContinueError::NotFound
        );
        assert_eq!(
            store.subscribe(&task.id).unwrap_err(),
            ContinueError::Terminal(TaskState::Completed)
        );
    }

    #[test]
    fn a_context_groups_earlier_tasks_into_the_conversation() {
        let store = TaskStore::new(10);
        let first = working();
        let _t = store.insert(first.clone());
        store.append_reply(&first.id, 1, "one");
        store.finish(&first.id, 1, TurnEnd::Completed);
        let other = new_task(user("elsewhere"), "d".into());
        let _o = store.insert(other);
        let second = new_task(user("two"), "c".into());
        let _s = store.insert(second.clone());
        assert_eq!(
            store.conversation(&second),
            [
                ("user".to_owned(), "in".to_owned()),
                ("agent".into(), "one".into())
            ]
        );
    }

    #[test]
    fn the_transcript_numbers_every_message_in_order() {
        let store = TaskStore::new(10);
        let task = working();
        let _t = store.insert(task.clone());
        store.finish(&task.id, 1, TurnEnd::InputRequired("name?".into()));
        store
            .continue_with(&task.id, None, user("Bob"))
            .expect("continues");
        store.append_reply(&task.id, 2, "hi Bob");
        store.finish(&task.id, 2, TurnEnd::Completed);
        let all = store.transcript(0, 100);
        let said: Vec<(u64, &str, &str)> = all
            .iter()
            .map(|e| (e.seq, e.role, e.text.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                (1, "user", "in"),
                (2, "agent", "name?"),
                (3, "user", "Bob"),
                (4, "agent", "hi Bob")
            ]
        );
        assert_eq!(store.transcript(2, 1)[0].text, "Bob", "after 2, one entry");
        assert!(store.transcript(4, 10).is_empty());
    }

    #[test]
    fn capacity_evicts_finished_tasks_first() {
        let store = TaskStore::new(3);
        let tasks: Vec<Task> = (0..3).map(|_| working()).collect();
        let _turns: Vec<_> = tasks.iter().map(|t| store.insert(t.clone())).collect();
        store.finish(&tasks[1].id, 1, TurnEnd::Completed);
        let fourth = working();
        let _t4 = store.insert(fourth.clone());
        assert_eq!(store.len(), 3);
        assert!(
            store.get(&tasks[1].id).is_none(),
            "the finished one goes first"
        );
        assert!(store.get(&tasks[0].id).is_some());

        // With every task running, the oldest goes.
        let fifth = working();
        let _t5 = store.insert(fifth.clone());
        assert_eq!(store.len(), 3);
        assert!(store.get(&tasks[0].id).is_none());
        assert!(store.get(&fifth.id).is_some());
    }
}
