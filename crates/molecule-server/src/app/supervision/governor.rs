//! The restart governor: the one place that decides whether a workspace is
//! restarted (DESIGN.md, Liveness and restart governance). Pure state and
//! decisions, no I/O, so every rule is table-tested:
//!
//! 1. `Unknown` never restarts; only `NotFound`/`Exited` count as gone.
//! 2. Per-workspace single flight; backoff 0 → 10 s → 20 s … capped at 5 min.
//! 3. Three restarts within ten minutes → `failed` ("crash loop"), no more
//!    automatic restarts until an operator acts.
//! 4. Fleet breaker: when ≥ 55 % (and at least 3) of the container
//!    workspaces inspected in one sweep look gone, the observer is suspect:
//!    automatic restarts freeze until a sweep sees them alive again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct GovernorConfig {
    pub backoff_start: Duration,
    pub backoff_max: Duration,
    pub crash_window: Duration,
    pub crash_limit: usize,
    pub breaker_ratio: f64,
    pub breaker_min: usize,
}

impl Default for GovernorConfig {
    fn default() -> Self {
        Self {
            backoff_start: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            crash_window: Duration::from_secs(600),
            crash_limit: 3,
            breaker_ratio: 0.55,
            breaker_min: 3,
        }
    }
}

/// What the governor decided about one restart request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Restart after `delay` (zero for the first restart in the window).
    Restart { delay: Duration, attempt: usize },
    /// A restart for this workspace is already in flight.
    AlreadyRestarting,
    /// Too many restarts: mark `failed`, stop trying.
    GiveUp { reason: String },
    /// The fleet breaker is open: no automatic restarts.
    Frozen,
}

/// The outcome of one health sweep for the breaker.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepVerdict {
    /// Act on the gone workspaces one by one.
    Proceed,
    /// Too many look gone at once: the breaker just opened.
    Trip { reason: String },
    /// The breaker is open and this sweep does not close it.
    StillFrozen,
    /// The breaker was open and the observer looks healthy again.
    Reset { reason: String },
}

#[derive(Default)]
pub struct Governor {
    config: GovernorConfig,
    history: HashMap<Uuid, VecDeque<Instant>>,
    in_flight: HashSet<Uuid>,
    frozen: bool,
}

/// `id`'s restarts in `history` within `window` before `now` (older ones
/// are dropped).
fn recent(
    history: &mut HashMap<Uuid, VecDeque<Instant>>,
    window: Duration,
    id: Uuid,
    now: Instant,
) -> &mut VecDeque<Instant> {
    let hist = history.entry(id).or_default();
    while hist
        .front()
        .is_some_and(|t| now.duration_since(*t) > window)
    {
        hist.pop_front();
    }
    hist
}

impl Governor {
    pub fn new(config: GovernorConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Another replica's health sweep opened or closed the fleet breaker:
    /// the breaker is the fleet's, so every replica's governor holds the
    /// same state (and a replica that takes over the sweep or the restarts
    /// carries it on).
    pub fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
    }

    /// Ask to restart `id` automatically at `now`.
    pub fn request(&mut self, id: Uuid, now: Instant) -> Decision {
        if self.frozen {
            return Decision::Frozen;
        }
        if self.in_flight.contains(&id) {
            return Decision::AlreadyRestarting;
        }
        let hist = recent(&mut self.history, self.config.crash_window, id, now);
        if hist.len() >= self.config.crash_limit {
            return Decision::GiveUp {
                reason: format!(
                    "crash loop: {} restarts within {} min",
                    hist.len(),
                    self.config.crash_window.as_secs() / 60
                ),
            };
        }
        let attempt = hist.len() + 1;
        let delay = match hist.len() {
            0 => Duration::ZERO,
            n => {
                let factor = 1u32.checked_shl((n - 1) as u32).unwrap_or(u32::MAX);
                self.config
                    .backoff_start
                    .saturating_mul(factor)
                    .min(self.config.backoff_max)
            }
        };
        hist.push_back(now);
        self.in_flight.insert(id);
        Decision::Restart { delay, attempt }
    }

    /// A restart (granted by `request`) finished, successfully or not.
    pub fn finished(&mut self, id: Uuid) {
        self.in_flight.remove(&id);
    }

    /// Another replica's governor restarted `id` at `now`: remember it, so
    /// that if this replica becomes the governor its crash-loop count and
    /// backoff carry on instead of starting afresh.
    pub fn record(&mut self, id: Uuid, now: Instant) {
        recent(&mut self.history, self.config.crash_window, id, now).push_back(now);
    }

    /// An operator acted (manual restart, resume, retry): forget the
    /// crash history so automatic restarts may happen again.
    pub fn reset_workspace(&mut self, id: Uuid) {
        self.history.remove(&id);
    }

    /// Feed one sweep's counts: `inspected` answered Running/Exited/NotFound,
    /// `gone` of them Exited/NotFound. Unknowns are not counted at all.
    pub fn sweep(&mut self, inspected: usize, gone: usize) -> SweepVerdict {
        let suspicious = gone >= self.config.breaker_min
            && inspected > 0
            && (gone as f64 / inspected as f64) >= self.config.breaker_ratio;
        match (self.frozen, suspicious) {
            (false, false) => SweepVerdict::Proceed,
            (false, true) => {
                self.frozen = true;
                SweepVerdict::Trip {
                    reason: format!(
                        "{gone} of {inspected} container workspaces look dead in one sweep (≥ {:.0} %): suspecting the observer, automatic restarts frozen",
                        self.config.breaker_ratio * 100.0
                    ),
                }
            }
            (true, true) => SweepVerdict::StillFrozen,
            (true, false) if inspected > 0 && gone < inspected => {
                self.frozen = false;
                SweepVerdict::Reset {
                    reason: format!(
                        "{} of {inspected} container workspaces running again: automatic restarts resumed",
                        inspected - gone
                    ),
                }
            }
            (true, false) => SweepVerdict::StillFrozen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gov() -> Governor {
        Governor::new(GovernorConfig::default())
    }

    /// A granted restart after `secs`, the `attempt`-th in the window.
    fn restart(secs: u64, attempt: usize) -> Decision {
        Decision::Restart {
            delay: Duration::from_secs(secs),
            attempt,
        }
    }

    #[test]
    fn backoff_and_crash_loop() {
        let mut g = gov();
        let id = Uuid::new_v4();
        let t0 = Instant::now();
        assert_eq!(g.request(id, t0), restart(0, 1));
        assert_eq!(
            g.request(id, t0),
            Decision::AlreadyRestarting,
            "single flight"
        );
        g.finished(id);
        assert_eq!(g.request(id, t0 + Duration::from_secs(60)), restart(10, 2));
        g.finished(id);
        assert_eq!(g.request(id, t0 + Duration::from_secs(120)), restart(20, 3));
        g.finished(id);
        assert!(
            matches!(g.request(id, t0 + Duration::from_secs(180)), Decision::GiveUp { reason } if reason.contains("crash loop"))
        );
        // Outside the window the history has aged out.
        assert_eq!(g.request(id, t0 + Duration::from_secs(1000)), restart(0, 1));
    }

    #[test]
    fn backoff_is_capped() {
        let cfg = GovernorConfig {
            crash_limit: 100,
            ..Default::default()
        };
        let mut g = Governor::new(cfg);
        let id = Uuid::new_v4();
        let t0 = Instant::now();
        let mut last = Duration::ZERO;
        for i in 0..40 {
            if let Decision::Restart { delay, .. } = g.request(id, t0 + Duration::from_secs(i)) {
                last = delay;
            }
            g.finished(id);
        }
        assert_eq!(last, Duration::from_secs(300));
    }

    #[test]
    fn restarts_recorded_from_another_governor_count_toward_a_crash_loop() {
        let mut g = gov();
        let id = Uuid::new_v4();
        let t0 = Instant::now();
        g.record(id, t0);
        g.record(id, t0 + Duration::from_secs(60));
        // The third restart in the window, with the backoff of a third.
        assert_eq!(g.request(id, t0 + Duration::from_secs(120)), restart(20, 3));
        g.finished(id);
        assert!(matches!(
            g.request(id, t0 + Duration::from_secs(180)),
            Decision::GiveUp { .. }
        ));
    }

    #[test]
    fn operator_reset_clears_history() {
        let mut g = gov();
        let id = Uuid::new_v4();
        let t0 = Instant::now();
        for _ in 0..3 {
            g.request(id, t0);
            g.finished(id);
        }
        assert!(matches!(g.request(id, t0), Decision::GiveUp { .. }));
        g.reset_workspace(id);
        assert!(matches!(
            g.request(id, t0),
            Decision::Restart { attempt: 1, .. }
        ));
    }

    #[test]
    fn fleet_breaker_table() {
        // (inspected, gone, expected verdict kind) applied in sequence.
        let mut g = gov();
        let kind = |v: SweepVerdict| match v {
            SweepVerdict::Proceed => "proceed",
            SweepVerdict::Trip { .. } => "trip",
            SweepVerdict::StillFrozen => "frozen",
            SweepVerdict::Reset { .. } => "reset",
        };
        let steps = [
            (10, 2, "proceed"),
            (4, 2, "proceed"), // 50 % < 55 %
            (2, 2, "proceed"), // below the minimum of 3
            (5, 3, "trip"),    // 60 %
            (5, 3, "frozen"),
            (0, 0, "frozen"), // nothing inspected (all unknown): stay frozen
            (5, 1, "reset"),
            (6, 4, "trip"),
        ];
        for (i, (inspected, gone, want)) in steps.into_iter().enumerate() {
            assert_eq!(kind(g.sweep(inspected, gone)), want, "step {i}");
        }
        assert!(g.is_frozen());
        assert_eq!(g.request(Uuid::new_v4(), Instant::now()), Decision::Frozen);
    }
}
