//! The bounded queue between activity writers and the `activity-writer`
//! task. It is bounded in rows and in bytes (the capped size of each row,
//! [`super::fields::row_bytes`]); a row counts against the byte bound from
//! the moment it is queued until the batch holding it is written or given
//! up, so a batch in flight is inside the bound too.
//!
//! A row may carry a completion: its caller waits until the batch holding
//! it is committed (group commit) and is told if it failed. Rows without
//! one (the proxy's per-call rows, scheduler history) are fire-and-forget.
//!
//! It does not write anything: `App::flush_activity` does.

use molecule_store::NewActivity;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::oneshot;

/// Rows held in memory waiting for the writer, whatever their size.
pub const QUEUE_ROWS: usize = 10_000;
/// Rows per transaction.
pub const BATCH_ROWS: usize = 500;
/// Bytes per transaction (a batch holds at least one row).
pub const BATCH_BYTES: usize = 8 << 20;

/// Tells a waiting caller how the batch holding its row ended.
pub type Completion = oneshot::Sender<Result<(), ()>>;

pub(super) struct Queued {
    pub row: NewActivity,
    pub bytes: usize,
    pub done: Option<Completion>,
}

/// A batch taken by the writer: the rows (as the store wants them) and,
/// index for index, their size and completion.
pub(super) struct Batch {
    pub rows: Vec<NewActivity>,
    pub meta: Vec<(usize, Option<Completion>)>,
}

/// The queue is full: the row was not queued.
#[derive(Debug)]
pub struct QueueFull;

struct Inner {
    items: VecDeque<Queued>,
    /// Bytes of the queued rows and of the batch being written.
    bytes: usize,
    /// The most `bytes` has ever been.
    peak_bytes: usize,
    last_drop_log: Option<Instant>,
}

/// The bounded activity queue.
#[derive(Clone)]
pub struct ActivityQueue {
    inner: Arc<Mutex<Inner>>,
    max_bytes: usize,
}

impl ActivityQueue {
    /// A queue holding at most [`QUEUE_ROWS`] rows and `max_bytes` bytes.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                items: VecDeque::new(),
                bytes: 0,
                peak_bytes: 0,
                last_drop_log: None,
            })),
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock is never held across code that can panic halfway through
        // an update, so a poisoned guard still holds a consistent queue.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue `row` of `bytes` (its capped size); refused when either bound
    /// would be passed. A refusal is logged at most once per second.
    pub(super) fn push(
        &self,
        row: NewActivity,
        bytes: usize,
        done: Option<Completion>,
    ) -> Result<(), QueueFull> {
        let mut inner = self.lock();
        if inner.items.len() >= QUEUE_ROWS || inner.bytes + bytes > self.max_bytes {
            let now = Instant::now();
            if inner
                .last_drop_log
                .is_none_or(|t| now.duration_since(t).as_secs() >= 1)
            {
                inner.last_drop_log = Some(now);
                tracing::warn!(
                    rows = inner.items.len(),
                    bytes = inner.bytes,
                    max_rows = QUEUE_ROWS,
                    max_bytes = self.max_bytes,
                    "activity queue full: refusing activity rows"
                );
            }
            return Err(QueueFull);
        }
        inner.bytes += bytes;
        inner.peak_bytes = inner.peak_bytes.max(inner.bytes);
        inner.items.push_back(Queued { row, bytes, done });
        Ok(())
    }

    /// The next batch: up to [`BATCH_ROWS`] rows and [`BATCH_BYTES`] bytes
    /// (at least one row). Its bytes stay counted until [`Self::release`].
    pub(super) fn take(&self) -> Batch {
        let mut inner = self.lock();
        let mut batch = Batch {
            rows: Vec::new(),
            meta: Vec::new(),
        };
        let mut bytes = 0;
        while batch.rows.len() < BATCH_ROWS
            && let Some(next) = inner.items.front()
            && (batch.rows.is_empty() || bytes + next.bytes <= BATCH_BYTES)
        {
            let Some(q) = inner.items.pop_front() else {
                break;
            };
            bytes += q.bytes;
            batch.rows.push(q.row);
            batch.meta.push((q.bytes, q.done));
        }
        batch
    }

    /// Rows of a failed batch go back to the front, in order; their bytes
    /// were never released.
    pub(super) fn requeue_front(&self, rows: Vec<Queued>) {
        let mut inner = self.lock();
        for q in rows.into_iter().rev() {
            inner.items.push_front(q);
        }
    }

    /// A batch's rows are written or given up: their bytes leave the bound.
    pub(super) fn release(&self, bytes: usize) {
        let mut inner = self.lock();
        inner.bytes = inner.bytes.saturating_sub(bytes);
    }

    /// Rows waiting (not counting a batch being written).
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held: queued rows and the batch being written.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The most bytes the queue has ever held.
    pub fn peak_bytes(&self) -> usize {
        self.lock().peak_bytes
    }

    /// The byte bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> NewActivity {
        NewActivity::new(uuid::Uuid::nil(), molecule_types::ActivityType::AgentLog)
    }

    #[test]
    fn the_byte_bound_holds_queued_and_in_flight_rows() {
        let q = ActivityQueue::new(1000);
        for _ in 0..4 {
            q.push(row(), 250, None).unwrap();
        }
        assert!(q.push(row(), 1, None).is_err(), "1000 of 1000 bytes held");
        let batch = q.take();
        assert_eq!(batch.rows.len(), 4);
        assert!(
            q.push(row(), 1, None).is_err(),
            "a batch being written still counts"
        );
        q.release(batch.meta.iter().map(|m| m.0).sum());
        q.push(row(), 1000, None).unwrap();
        assert_eq!(q.bytes(), 1000);
        assert_eq!(q.peak_bytes(), 1000);
    }

    #[test]
    fn batches_are_bounded_in_rows_and_bytes() {
        let q = ActivityQueue::new(usize::MAX);
        for _ in 0..BATCH_ROWS + 1 {
            q.push(row(), 1, None).unwrap();
        }
        assert_eq!(q.take().rows.len(), BATCH_ROWS);
        assert_eq!(q.take().rows.len(), 1);
        for _ in 0..3 {
            q.push(row(), BATCH_BYTES / 2, None).unwrap();
        }
        assert_eq!(q.take().rows.len(), 2);
        q.push(row(), 2 * BATCH_BYTES, None).unwrap();
        assert_eq!(q.take().rows.len(), 1, "the rest of the three");
        assert_eq!(q.take().rows.len(), 1, "an oversized row goes alone");
    }
}
