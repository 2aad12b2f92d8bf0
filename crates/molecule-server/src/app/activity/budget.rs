//! The per-workspace activity write budget: each workspace may write at
//! most `bytes` and `rows` of activity per `window`, refilled continuously
//! (a token bucket per workspace, full at the start). A write over budget
//! is refused with the seconds until it would fit, so one workspace that
//! floods its log is slowed down alone and the others keep writing.
//!
//! It does not bound memory by itself (the queue's byte bound does) and it
//! does not charge the proxy's per-call rows: they are the platform's own
//! record, limited by the rate limiter and the queue.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Limits of one workspace's activity writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    pub bytes: u64,
    pub rows: u64,
    pub window: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    bytes: f64,
    rows: f64,
    at: Instant,
}

/// Every workspace's bucket.
pub struct WriteBudget {
    config: BudgetConfig,
    buckets: Mutex<Buckets>,
}

struct Buckets {
    map: HashMap<Uuid, Bucket>,
    last_purge: Option<Instant>,
}

/// Buckets kept before idle (full) ones are dropped.
const PURGE_ABOVE: usize = 1024;

impl WriteBudget {
    pub fn new(config: BudgetConfig) -> Self {
        Self {
            config,
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                last_purge: None,
            }),
        }
    }

    /// Take one row of `bytes` from `workspace`'s budget at `now`; when it
    /// does not fit, nothing is taken and the answer is the whole seconds
    /// (at least 1) until it would.
    pub fn charge(&self, workspace: Uuid, bytes: usize, now: Instant) -> Result<(), u64> {
        let c = self.config;
        let window = c.window.as_secs_f64().max(f64::MIN_POSITIVE);
        let (byte_rate, row_rate) = (c.bytes as f64 / window, c.rows as f64 / window);
        let Ok(mut b) = self.buckets.lock() else {
            // A poisoned lock means a panic mid-update: let the write through
            // rather than refuse every workspace from now on.
            return Ok(());
        };
        b.purge_idle(now, c.window);
        let bucket = b.map.entry(workspace).or_insert(Bucket {
            bytes: c.bytes as f64,
            rows: c.rows as f64,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.bytes = (bucket.bytes + elapsed * byte_rate).min(c.bytes as f64);
        bucket.rows = (bucket.rows + elapsed * row_rate).min(c.rows as f64);
        bucket.at = now;
        let need = bytes as f64;
        if bucket.bytes >= need && bucket.rows >= 1.0 {
            bucket.bytes -= need;
            bucket.rows -= 1.0;
            return Ok(());
        }
        let wait_bytes = (need - bucket.bytes).max(0.0) / byte_rate.max(f64::MIN_POSITIVE);
        let wait_rows = (1.0 - bucket.rows).max(0.0) / row_rate.max(f64::MIN_POSITIVE);
        let wait = wait_bytes.max(wait_rows).ceil().clamp(1.0, 86_400.0);
        Err(wait as u64)
    }
}

impl Buckets {
    /// Drop buckets untouched for a whole window (they are full again, the
    /// same as absent), at most once per window and only once there are many.
    fn purge_idle(&mut self, now: Instant, window: Duration) {
        if self.map.len() <= PURGE_ABOVE
            || self
                .last_purge
                .is_some_and(|t| now.saturating_duration_since(t) < window)
        {
            return;
        }
        self.last_purge = Some(now);
        self.map
            .retain(|_, b| now.saturating_duration_since(b.at) < window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 960 KiB: refills at exactly 16 KiB/s over a 60 s window.
    const BYTES: u64 = 960 << 10;

    fn budget(bytes: u64, rows: u64, window: u64) -> WriteBudget {
        WriteBudget::new(BudgetConfig {
            bytes,
            rows,
            window: Duration::from_secs(window),
        })
    }

    #[test]
    fn decisions() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        struct Case {
            name: &'static str,
            budget: WriteBudget,
            /// (workspace, bytes, time since start, expected)
            script: Vec<(Uuid, usize, Duration, Result<(), u64>)>,
        }
        let cases = [
            Case {
                name: "bytes run out, then refill at bytes/window",
                budget: budget(BYTES, 1000, 60),
                script: vec![
                    (a, 480 << 10, s(0), Ok(())),
                    (a, 480 << 10, s(0), Ok(())),
                    // 240 KiB at 16 KiB/s.
                    (a, 240 << 10, s(0), Err(15)),
                    (a, 240 << 10, s(15), Ok(())),
                ],
            },
            Case {
                name: "rows run out; another workspace is not affected",
                budget: budget(BYTES, 2, 20),
                script: vec![
                    (a, 10, s(0), Ok(())),
                    (a, 10, s(0), Ok(())),
                    (a, 10, s(0), Err(10)),
                    (b, 10, s(0), Ok(())),
                    (a, 10, s(10), Ok(())),
                ],
            },
            Case {
                name: "an idle bucket refills to its cap, not beyond",
                budget: budget(BYTES, 1000, 60),
                script: vec![
                    (a, BYTES as usize, s(0), Ok(())),
                    (a, BYTES as usize, s(600), Ok(())),
                    (a, 1, s(600), Err(1)),
                ],
            },
        ];
        for c in cases {
            for (i, (ws, bytes, at, want)) in c.script.into_iter().enumerate() {
                assert_eq!(
                    c.budget.charge(ws, bytes, t0 + at),
                    want,
                    "{}: step {i}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn idle_buckets_are_dropped_once_there_are_many() {
        let budget = budget(BYTES, 10, 60);
        let t0 = Instant::now();
        for i in 0..=PURGE_ABOVE as u128 {
            budget.charge(Uuid::from_u128(i), 1, t0).unwrap();
        }
        budget
            .charge(Uuid::from_u128(u128::MAX), 1, t0 + Duration::from_secs(61))
            .unwrap();
        assert_eq!(budget.buckets.lock().unwrap().map.len(), 1);
    }
}
