//! What the heartbeat reports about this agent: the rolling error rate over
//! the last five minutes, the last error text, the tasks running now and a
//! preview of the newest one, and the uptime.
//!
//! Time is passed in (`Instant`) rather than read inside the window, so the
//! window is tested without sleeping. Only finished executions count as
//! requests; a canceled one counts neither way, since it says nothing about
//! the agent's health. Malformed JSON-RPC calls are the caller's errors and
//! are not counted at all.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The window the heartbeat's `error_rate` covers.
pub const ERROR_WINDOW: Duration = Duration::from_secs(300);
/// The window is kept as this many buckets; an outcome leaves the window at
/// most one bucket width (5 s) late.
const BUCKETS: u32 = 60;
/// Longest `current_task` preview, in characters.
const PREVIEW_CHARS: usize = 200;

/// How one execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded,
    Failed(String),
    Canceled,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    slot: u64,
    requests: u64,
    errors: u64,
    last_error: Option<String>,
}

/// Errors over requests in a rolling window, kept in fixed-width buckets.
#[derive(Debug)]
pub struct ErrorWindow {
    origin: Instant,
    width: Duration,
    buckets: VecDeque<Bucket>,
}

impl ErrorWindow {
    /// A window of `span` starting at `origin` (outcomes before it are
    /// counted in the first bucket).
    pub fn new(origin: Instant, span: Duration) -> ErrorWindow {
        let width = (span / BUCKETS).max(Duration::from_millis(1));
        ErrorWindow {
            origin,
            width,
            buckets: VecDeque::new(),
        }
    }

    fn slot(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(elapsed / self.width.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Drops buckets that fell out of the window ending at `now`.
    fn prune(&mut self, now: Instant) {
        let oldest_kept = self.slot(now).saturating_sub(u64::from(BUCKETS) - 1);
        while self.buckets.front().is_some_and(|b| b.slot < oldest_kept) {
            self.buckets.pop_front();
        }
    }

    /// Counts one request that ended at `now`, with its error text if it failed.
    pub fn record(&mut self, now: Instant, error: Option<&str>) {
        self.prune(now);
        let slot = self.slot(now);
        if self.buckets.back().is_none_or(|b| b.slot != slot) {
            self.buckets.push_back(Bucket {
                slot,
                ..Bucket::default()
            });
        }
        if let Some(bucket) = self.buckets.back_mut() {
            bucket.requests += 1;
            if let Some(error) = error {
                bucket.errors += 1;
                bucket.last_error = Some(error.to_owned());
            }
        }
    }

    /// Errors / requests in the window ending at `now`; 0 when idle.
    pub fn rate(&mut self, now: Instant) -> f64 {
        self.prune(now);
        let (requests, errors) = self
            .buckets
            .iter()
            .fold((0, 0), |(r, e), b| (r + b.requests, e + b.errors));
        if requests == 0 {
            0.0
        } else {
            errors as f64 / requests as f64
        }
    }

    /// The newest error text still in the window, or "".
    pub fn sample_error(&mut self, now: Instant) -> String {
        self.prune(now);
        self.buckets
            .iter()
            .rev()
            .find_map(|b| b.last_error.clone())
            .unwrap_or_default()
    }
}

/// The numbers one heartbeat carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub error_rate: f64,
    pub sample_error: String,
    pub active_tasks: i32,
    pub uptime_seconds: i32,
    pub current_task: String,
}

#[derive(Debug)]
struct Inner {
    window: ErrorWindow,
    next_seq: u64,
    /// Running executions by start order, with their input previews.
    running: BTreeMap<u64, String>,
}

/// The agent's live counters, shared by the runner and the heartbeat.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    inner: Mutex<Inner>,
}

impl Stats {
    pub fn new() -> Arc<Stats> {
        let started = Instant::now();
        Arc::new(Stats {
            started,
            inner: Mutex::new(Inner {
                window: ErrorWindow::new(started, ERROR_WINDOW),
                next_seq: 0,
                running: BTreeMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The counters stay consistent even if a holder panicked: every
        // critical section is a few plain field updates.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks an execution of `input` as running until the returned guard is
    /// finished or dropped (a dropped guard counts as canceled).
    pub fn begin(self: &Arc<Self>, input: &str) -> ActiveTask {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.running.insert(seq, preview(input));
        ActiveTask {
            stats: Arc::clone(self),
            seq,
            finished: false,
        }
    }

    fn end(&self, seq: u64, outcome: &Outcome) {
        let mut inner = self.lock();
        inner.running.remove(&seq);
        let now = Instant::now();
        match outcome {
            Outcome::Succeeded => inner.window.record(now, None),
            Outcome::Failed(error) => inner.window.record(now, Some(error)),
            Outcome::Canceled => {}
        }
    }

    /// The heartbeat's view right now.
    pub fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        let mut inner = self.lock();
        Snapshot {
            error_rate: inner.window.rate(now),
            sample_error: inner.window.sample_error(now),
            active_tasks: i32::try_from(inner.running.len()).unwrap_or(i32::MAX),
            uptime_seconds: i32::try_from(now.duration_since(self.started).as_secs())
                .unwrap_or(i32::MAX),
            current_task: inner
                .running
                .last_key_value()
                .map(|(_, preview)| preview.clone())
                .unwrap_or_default(),
        }
    }
}

/// A running execution; see [`Stats::begin`].
#[derive(Debug)]
pub struct ActiveTask {
    stats: Arc<Stats>,
    seq: u64,
    finished: bool,
}

impl ActiveTask {
    pub fn finish(mut self, outcome: &Outcome) {
        self.finished = true;
        self.stats.end(self.seq, outcome);
    }
}

impl Drop for ActiveTask {
    fn drop(&mut self) {
        if !self.finished {
            self.stats.end(self.seq, &Outcome::Canceled);
        }
    }
}

/// The first line of `input`, cut to [`PREVIEW_CHARS`].
fn preview(input: &str) -> String {
    let line = input.trim().lines().next().unwrap_or_default();
    line.chars().take(PREVIEW_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn error_rate_covers_exactly_the_rolling_window() {
        // (seconds after origin, failed?) events, then (query second, rate, sample).
        type Case = (
            &'static [(u64, Option<&'static str>)],
            u64,
            f64,
            &'static str,
        );
        let cases: &[Case] = &[
            (&[], 0, 0.0, ""),
            (&[(0, None)], 1, 0.0, ""),
            (&[(0, Some("boom"))], 1, 1.0, "boom"),
            (
                &[(0, None), (1, Some("a")), (2, None), (3, Some("b"))],
                4,
                0.5,
                "b",
            ),
            // Still inside five minutes.
            (&[(0, Some("old")), (10, None)], 299, 0.5, "old"),
            // The first bucket (0–5 s) has left the window 300 s later.
            (&[(0, Some("old")), (10, None)], 305, 0.0, ""),
            // Everything expired: idle again.
            (&[(0, Some("x")), (1, None)], 900, 0.0, ""),
            // Old errors expire while new successes stay.
            (&[(0, Some("x")), (200, None), (250, None)], 320, 0.0, ""),
            // The newest error text is reported, not the first.
            (
                &[(100, Some("first")), (150, Some("second")), (160, None)],
                170,
                2.0 / 3.0,
                "second",
            ),
        ];
        for (events, at, rate, sample) in cases {
            let origin = Instant::now();
            let mut window = ErrorWindow::new(origin, ERROR_WINDOW);
            for (second, error) in *events {
                window.record(origin + S * (*second as u32), *error);
            }
            let now = origin + S * (*at as u32);
            assert!((window.rate(now) - rate).abs() < 1e-9, "{events:?} at {at}");
            assert_eq!(window.sample_error(now), *sample, "{events:?} at {at}");
        }
    }

    #[test]
    fn window_memory_stays_bounded() {
        let origin = Instant::now();
        let mut window = ErrorWindow::new(origin, ERROR_WINDOW);
        for second in 0..10_000u32 {
            window.record(origin + S * second, None);
        }
        assert!(
            window.buckets.len() <= BUCKETS as usize,
            "{}",
            window.buckets.len()
        );
        assert_eq!(window.rate(origin + S * 10_000), 0.0);
    }

    #[test]
    fn activity_tracks_running_tasks_and_outcomes() {
        let stats = Stats::new();
        assert_eq!(stats.snapshot().active_tasks, 0);
        assert_eq!(stats.snapshot().current_task, "");

        let first = stats.begin("first task\nsecond line");
        let second = stats.begin("  newer task  ");
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.active_tasks, 2);
        assert_eq!(snapshot.current_task, "newer task");

        second.finish(&Outcome::Failed("it broke".into()));
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.active_tasks, 1);
        assert_eq!(snapshot.current_task, "first task");
        assert_eq!(snapshot.error_rate, 1.0);
        assert_eq!(snapshot.sample_error, "it broke");

        first.finish(&Outcome::Succeeded);
        let canceled = stats.begin("dropped");
        drop(canceled);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.active_tasks, 0);
        assert_eq!(snapshot.current_task, "");
        assert_eq!(
            snapshot.error_rate, 0.5,
            "a canceled task counts neither way"
        );
    }

    #[test]
    fn previews_are_one_bounded_line() {
        assert_eq!(preview(&"x".repeat(500)).len(), PREVIEW_CHARS);
        assert_eq!(preview("\n\n  hello\nworld"), "hello");
        assert_eq!(preview(""), "");
    }
}
