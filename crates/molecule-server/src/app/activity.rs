//! Activity logging off the request path: rows go into a bounded in-memory
//! queue and a background task writes them in batches. A full queue drops
//! the row, counts it and logs (at most once per second); it never blocks
//! the caller.

use molecule_store::NewActivity;
use molecule_types::{Event, EventType};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::App;
use crate::error::{AppError, AppResult};

/// Rows held in memory waiting for the writer.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Rows per transaction.
pub const BATCH: usize = 500;

#[derive(Default)]
struct Inner {
    rows: VecDeque<NewActivity>,
    last_drop_log: Option<Instant>,
}

/// The bounded queue between callers and the `activity-writer` task.
#[derive(Clone, Default)]
pub struct ActivityQueue {
    inner: Arc<Mutex<Inner>>,
}

impl ActivityQueue {
    /// Queue `row`; false when the queue is full and the row was dropped.
    fn push(&self, row: NewActivity) -> bool {
        let mut inner = self.inner.lock().expect("activity queue poisoned");
        if inner.rows.len() >= QUEUE_CAPACITY {
            let now = Instant::now();
            if inner
                .last_drop_log
                .is_none_or(|t| now.duration_since(t).as_secs() >= 1)
            {
                inner.last_drop_log = Some(now);
                tracing::warn!(
                    capacity = QUEUE_CAPACITY,
                    "activity queue full: dropping activity rows"
                );
            }
            return false;
        }
        inner.rows.push_back(row);
        true
    }

    fn take(&self, max: usize) -> Vec<NewActivity> {
        let mut inner = self.inner.lock().expect("activity queue poisoned");
        let n = inner.rows.len().min(max);
        inner.rows.drain(..n).collect()
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .expect("activity queue poisoned")
            .rows
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl App {
    /// Queue an activity row for the writer. Never blocks; a full queue is
    /// counted in `molecule_activity_dropped_total`.
    pub fn record_activity(&self, row: NewActivity) {
        if self.activity.push(row) {
            self.metrics.inc("molecule_activity_queued_total", &[]);
        } else {
            self.metrics.inc("molecule_activity_dropped_total", &[]);
        }
    }

    /// Queue a row and broadcast `ACTIVITY_LOGGED` for it (WebSocket only).
    pub fn record_activity_announced(&self, row: NewActivity) {
        let event = Event::new(
            EventType::ActivityLogged,
            row.workspace_id,
            json!({
                "activity_type": row.activity_type,
                "method": row.method,
                "summary": row.summary,
                "status": row.status,
                "source_id": row.source_id,
                "target_id": row.target_id,
                "duration_ms": row.duration_ms,
            }),
        );
        self.record_activity(row);
        self.events.publish_live(event);
    }

    /// Write everything queued, in batches. Returns the rows written. On a
    /// database error the batch is put back at the front of the queue, so
    /// a hiccup loses nothing (the queue's bound still applies).
    pub async fn flush_activity(&self) -> AppResult<usize> {
        let mut written = 0;
        loop {
            let batch = self.activity.take(BATCH);
            if batch.is_empty() {
                return Ok(written);
            }
            match self.store.activity_insert_many(&batch).await {
                Ok(n) => {
                    written += batch.len();
                    self.metrics
                        .add("molecule_activity_rows_written_total", &[], n as f64);
                }
                Err(e) => {
                    let mut inner = self.activity.inner.lock().expect("activity queue poisoned");
                    for row in batch.into_iter().rev() {
                        if inner.rows.len() < QUEUE_CAPACITY {
                            inner.rows.push_front(row);
                        }
                    }
                    drop(inner);
                    return Err(AppError::internal("failed to write activity")(e));
                }
            }
        }
    }
}
