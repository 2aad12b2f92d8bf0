//! The platform's wall clock. Everything that compares against the time of
//! day (memory TTLs, approval expiry, cron, staleness of external
//! workspaces, retention, token and event timestamps) reads it here, so a
//! test can move time forward instead of sleeping until it passes.
//!
//! Production uses the system clock. [`Clock::adjustable`] is the system
//! clock plus a skew a test advances: time still flows (timestamps stay
//! ordered and nothing freezes), it just can jump ahead.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system time; `None` for the plain system
    /// clock.
    skew_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system clock plus a skew that [`Clock::advance`] grows. Clones
    /// share the skew, so a test keeps one and hands one to the server.
    pub fn adjustable() -> Self {
        Self {
            skew_ms: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        match &self.skew_ms {
            None => now,
            Some(skew) => now + chrono::Duration::milliseconds(skew.load(Ordering::Acquire)),
        }
    }

    /// Move an adjustable clock forward by `by`. A system clock does not
    /// move: calling this on one is a bug in the caller, so it panics in
    /// debug builds and is ignored otherwise.
    pub fn advance(&self, by: Duration) {
        match &self.skew_ms {
            Some(skew) => {
                let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
                skew.fetch_add(ms, Ordering::AcqRel);
            }
            None => debug_assert!(false, "advance() on the system clock"),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.skew_ms {
            None => f.write_str("Clock::system"),
            Some(skew) => write!(f, "Clock::adjustable(+{} ms)", skew.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_jumps_ahead_and_clones_share_it() {
        let clock = Clock::adjustable();
        let handed_out = clock.clone();
        let before = handed_out.now();
        clock.advance(Duration::from_secs(3600));
        let after = handed_out.now();
        assert!(after - before >= chrono::Duration::seconds(3600));
        assert!(after - before < chrono::Duration::seconds(3700));
        let system = Clock::system();
        assert!((system.now() - Utc::now()).num_seconds().abs() < 5);
    }
}
