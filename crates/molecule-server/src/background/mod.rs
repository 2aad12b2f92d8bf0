//! The background task driver (STYLE.md, Background work). Every long-lived
//! loop is a named [`Task`] with a period; the driver runs one activation per
//! period (or sooner when asked), catches panics and backs off 1 s → 30 s,
//! and records the last tick so `/admin/liveness` and `/readyz` can tell a
//! stuck task from a healthy one.

pub mod jobs;
pub mod tasks;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::app::App;

/// One kind of periodic work. An activation takes no input: it re-reads
/// what it needs, is idempotent, and does not retry internally.
#[async_trait]
pub trait Task: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn period(&self) -> Duration;
    /// One replica at a time runs it: the one that leads it on the
    /// database (`Store::lead`); the others stand by and take over when the
    /// leader's process ends.
    fn singleton(&self) -> bool {
        false
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Idle,
    Running,
    BackingOff,
    Stopped,
    /// A singleton another replica leads: checked again, not run.
    Standby,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Running => "running",
            Self::BackingOff => "backing_off",
            Self::Stopped => "stopped",
            Self::Standby => "standby",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TaskStatus {
    pub period: Duration,
    pub state: TaskState,
    pub last_tick_at: Option<DateTime<Utc>>,
    /// Activations completed (with or without an error) since start.
    pub ticks: u64,
    pub panics: u64,
    pub last_error: Option<String>,
    /// How long the last completed activation took.
    pub last_duration: Option<Duration>,
}

impl TaskStatus {
    /// No completed activation for three periods.
    pub fn is_stale(&self, now: DateTime<Utc>, started_at: DateTime<Utc>) -> bool {
        let since = self.last_tick_at.unwrap_or(started_at);
        let limit = chrono::Duration::from_std(self.period * 3).unwrap_or(chrono::Duration::MAX);
        self.state != TaskState::Stopped && now - since > limit
    }
}

#[derive(Default)]
struct Registry {
    status: BTreeMap<&'static str, TaskStatus>,
    wake: BTreeMap<&'static str, Arc<Notify>>,
}

/// Status of every registered task, shared with the HTTP layer.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    inner: Arc<Mutex<Registry>>,
}

impl TaskRegistry {
    pub fn snapshot(&self) -> BTreeMap<&'static str, TaskStatus> {
        self.inner
            .lock()
            .map(|r| r.status.clone())
            .unwrap_or_default()
    }

    /// Ask a task to run now instead of at its next period.
    pub fn activate(&self, name: &str) {
        if let Some(n) = self
            .inner
            .lock()
            .ok()
            .and_then(|r| r.wake.get(name).cloned())
        {
            n.notify_one();
        }
    }

    fn update(&self, name: &'static str, f: impl FnOnce(&mut TaskStatus)) {
        if let Ok(mut r) = self.inner.lock()
            && let Some(s) = r.status.get_mut(name)
        {
            f(s);
        }
    }

    fn register(&self, name: &'static str, period: Duration) -> Arc<Notify> {
        let wake = Arc::new(Notify::new());
        if let Ok(mut r) = self.inner.lock() {
            r.status.insert(
                name,
                TaskStatus {
                    period,
                    state: TaskState::Idle,
                    last_tick_at: None,
                    ticks: 0,
                    panics: 0,
                    last_error: None,
                    last_duration: None,
                },
            );
            r.wake.insert(name, wake.clone());
        }
        wake
    }
}

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often a standing-by replica asks for the lead of a singleton task.
const STANDBY_RECHECK: Duration = Duration::from_secs(1);
/// How often a leading replica asks again while it waits for its next run.
const LEADER_RECHECK: Duration = Duration::from_secs(5);

/// Start `task` on the driver; it stops when `shutdown` turns true.
pub fn spawn(app: App, task: Arc<dyn Task>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let name = task.name();
    let period = task.period();
    let registry = app.tasks().clone();
    let wake = registry.register(name, period);
    tokio::spawn(async move {
        let mut backoff = BACKOFF_START;
        'run: loop {
            if task.singleton() && !app.lead(name).await {
                // Standing by is a tick too (the task is not stuck), and
                // the lead is asked for again soon: a takeover happens
                // within a second or two of the leader's end, not a period.
                registry.update(name, |s| {
                    s.state = TaskState::Standby;
                    s.last_tick_at = Some(Utc::now());
                    s.ticks += 1;
                });
                tokio::select! {
                    _ = tokio::time::sleep(period.min(STANDBY_RECHECK)) => {}
                    _ = wake.notified() => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
                continue;
            }
            registry.update(name, |s| s.state = TaskState::Running);
            let began = std::time::Instant::now();
            let outcome = AssertUnwindSafe(task.activate(&app)).catch_unwind().await;
            let mut delay = period;
            match outcome {
                Ok(result) => {
                    backoff = BACKOFF_START;
                    let err = result.err().map(|e| format!("{e:#}"));
                    if let Some(e) = &err {
                        tracing::warn!(task = name, error = %e, "background task activation failed");
                        app.metrics()
                            .inc("molecule_background_task_errors_total", &[("task", name)]);
                    }
                    registry.update(name, |s| {
                        s.state = TaskState::Idle;
                        s.last_tick_at = Some(Utc::now());
                        s.ticks += 1;
                        s.last_error = err;
                        s.last_duration = Some(began.elapsed());
                    });
                    app.metrics()
                        .inc("molecule_background_task_ticks_total", &[("task", name)]);
                }
                Err(panic) => {
                    let msg = panic_message(&panic);
                    tracing::error!(task = name, panic = %msg, backoff_s = backoff.as_secs(), "background task panicked; backing off");
                    app.metrics()
                        .inc("molecule_background_task_panics_total", &[("task", name)]);
                    registry.update(name, |s| {
                        s.state = TaskState::BackingOff;
                        s.panics += 1;
                        s.last_error = Some(format!("panic: {msg}"));
                    });
                    delay = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
            // A leader waiting out a long period asks for its lead again
            // every few seconds: one that lost it (its session ended) shows
            // `standby` at once, not when its next run comes.
            let next = tokio::time::Instant::now() + delay;
            loop {
                let recheck = tokio::time::Instant::now() + LEADER_RECHECK;
                tokio::select! {
                    _ = tokio::time::sleep_until(next.min(recheck)) => {}
                    _ = wake.notified() => break,
                    _ = shutdown.wait_for(|stop| *stop) => break 'run,
                }
                if tokio::time::Instant::now() >= next
                    || (task.singleton() && !app.lead(name).await)
                {
                    break;
                }
            }
        }
        registry.update(name, |s| s.state = TaskState::Stopped);
    })
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_is_three_periods_without_a_tick() {
        let start = Utc::now();
        let s = TaskStatus {
            period: Duration::from_secs(10),
            state: TaskState::Idle,
            last_tick_at: Some(start),
            ticks: 1,
            panics: 0,
            last_error: None,
            last_duration: None,
        };
        assert!(!s.is_stale(start + chrono::Duration::seconds(29), start));
        assert!(s.is_stale(start + chrono::Duration::seconds(31), start));
        let never = TaskStatus {
            last_tick_at: None,
            ..s.clone()
        };
        assert!(never.is_stale(start + chrono::Duration::seconds(31), start));
        let stopped = TaskStatus {
            state: TaskState::Stopped,
            ..s
        };
        assert!(!stopped.is_stale(start + chrono::Duration::seconds(300), start));
    }
}
