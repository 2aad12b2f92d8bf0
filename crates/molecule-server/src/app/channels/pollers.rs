//! The channel pollers: one long-poll loop per enabled channel whose
//! platform polls (Telegram, unless the channel is in webhook mode), run as
//! jobs of the `channels` background task. Each activation reconciles the
//! running pollers with the table — a changed config restarts its poller, a
//! disabled or deleted channel stops it — and CRUD activates the task at
//! once. A rejected token does not end a poller (the reference dropped the
//! bot for good): it retries with backoff, so a revoked token that comes
//! back, or a fixed config, resumes the channel.

use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{ApiError, OpenChannel, PollerStatus, adapter};
use crate::app::App;
use crate::error::AppResult;

/// Backoff after an error the platform gave no delay for.
const RETRY: Duration = Duration::from_secs(2);
/// Longest backoff after a rejected token.
const MAX_UNAUTHORIZED_BACKOFF: Duration = Duration::from_secs(300);

/// A stop flag a sleeping or polling loop notices at once.
#[derive(Default)]
pub(crate) struct Stop {
    flag: AtomicBool,
    wake: Notify,
}

impl Stop {
    pub(crate) fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    fn stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Default)]
struct Report {
    state: String,
    last_poll_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

/// A running poller, as the reconciler and `/admin/liveness` see it.
pub(crate) struct Poller {
    /// What it runs with: a changed config means a restart.
    fingerprint: String,
    channel_type: String,
    workspace_id: Uuid,
    bot_token: String,
    stop: Arc<Stop>,
    report: Arc<Mutex<Report>>,
}

impl Poller {
    pub(crate) fn status(&self) -> PollerStatus {
        let r = self.report.lock().map(|r| r.clone()).unwrap_or_default();
        PollerStatus {
            channel_type: self.channel_type.clone(),
            workspace_id: self.workspace_id,
            state: r.state,
            last_poll_at: r.last_poll_at,
            last_error: r.last_error,
        }
    }
}

fn fingerprint(ch: &OpenChannel) -> String {
    format!("{}|{}", ch.row.workspace_id, ch.config)
}

/// Whether the channel's messages come by polling.
fn polled(ch: &OpenChannel) -> bool {
    adapter(&ch.row.channel_type).is_some_and(|a| a.polls())
        && ch.config["mode"].as_str() != Some("webhook")
}

impl App {
    /// One activation of the `channels` task.
    pub async fn reconcile_channels(&self) -> AppResult<()> {
        self.channels.poller_jobs.reap();
        self.channels.message_jobs.reap();
        let wanted: Vec<OpenChannel> = self
            .enabled_channels()
            .await?
            .into_iter()
            .filter(polled)
            .collect();
        let mut start = Vec::new();
        if let Ok(mut pollers) = self.channels.pollers.lock() {
            pollers.retain(|id, p| {
                let keep = wanted
                    .iter()
                    .any(|ch| ch.row.id == *id && fingerprint(ch) == p.fingerprint)
                    && self.channels.poller_jobs.is_running(id);
                if !keep {
                    p.stop.stop();
                }
                keep
            });
            for ch in wanted {
                if !pollers.contains_key(&ch.row.id) {
                    let poller = Poller {
                        fingerprint: fingerprint(&ch),
                        channel_type: ch.row.channel_type.clone(),
                        workspace_id: ch.row.workspace_id,
                        bot_token: ch.config["bot_token"].as_str().unwrap_or_default().into(),
                        stop: Arc::new(Stop::default()),
                        report: Arc::new(Mutex::new(Report {
                            state: "starting".into(),
                            ..Default::default()
                        })),
                    };
                    let id = ch.row.id;
                    start.push((ch, poller.stop.clone(), poller.report.clone()));
                    pollers.insert(id, poller);
                }
            }
        }
        for (ch, stop, report) in start {
            let app = self.clone();
            let id = ch.row.id;
            // A poller that was just stopped may still be finishing: its job
            // key frees when it returns, and the next activation starts this
            // one.
            if !self
                .channels
                .poller_jobs
                .launch(id, async move { app.run_poller(ch, stop, report).await })
                && let Ok(mut pollers) = self.channels.pollers.lock()
            {
                pollers.remove(&id);
            }
        }
        self.purge_channel_history().await;
        Ok(())
    }

    /// Stops the pollers of `workspace` on `token` (while discover reads
    /// the bot's updates); the next activation starts them again.
    pub(crate) fn pause_pollers(&self, workspace: Uuid, token: &str) -> usize {
        let Ok(mut pollers) = self.channels.pollers.lock() else {
            return 0;
        };
        let before = pollers.len();
        pollers.retain(|_, p| {
            let paused = p.workspace_id == workspace && p.bot_token == token;
            if paused {
                p.stop.stop();
            }
            !paused
        });
        before - pollers.len()
    }

    pub(crate) fn resume_pollers(&self, paused: usize) {
        if paused > 0 {
            self.tasks.activate(super::CHANNELS_TASK);
        }
    }

    async fn run_poller(&self, ch: OpenChannel, stop: Arc<Stop>, report: Arc<Mutex<Report>>) {
        let Some(adapter) = adapter(&ch.row.channel_type) else {
            return;
        };
        let set = |state: &str, error: Option<String>, polled: bool| {
            if let Ok(mut r) = report.lock() {
                r.state = state.to_string();
                if polled {
                    r.last_poll_at = Some(self.now());
                }
                if error.is_some() || polled {
                    r.last_error = error;
                }
            }
        };
        let mut shutdown = self.shutdown_signal();
        let mut offset = 0;
        let mut unauthorized = RETRY;
        tracing::info!(channel_id = %ch.row.id, channel_type = %ch.row.channel_type, "channel poller started");
        loop {
            // Listening before looking at the flag: a stop in between wakes
            // the select below.
            let woken = stop.wake.notified();
            if stop.stopped() || *shutdown.borrow() {
                break;
            }
            set("polling", None, false);
            let polled = tokio::select! {
                r = adapter.poll(self, &ch.config, offset) => r,
                () = woken => break,
                _ = shutdown.changed() => break,
            };
            let pause = match polled {
                Ok(p) => {
                    set("polling", None, true);
                    unauthorized = RETRY;
                    offset = p.next_offset;
                    for m in p.membership {
                        self.channel_membership(&ch, m).await;
                    }
                    for m in p.messages {
                        self.accept_inbound(&ch, m);
                    }
                    None
                }
                Err(ApiError::RateLimited(secs)) => {
                    set("rate_limited", Some(format!("retry after {secs} s")), false);
                    Some(Duration::from_secs(secs.max(1)))
                }
                Err(ApiError::Unauthorized(e)) => {
                    tracing::warn!(channel_id = %ch.row.id, "channel token rejected; retrying with backoff");
                    set("unauthorized", Some(e), false);
                    let wait = unauthorized;
                    unauthorized = (unauthorized * 2).min(MAX_UNAUTHORIZED_BACKOFF);
                    Some(wait)
                }
                Err(ApiError::Other(e)) => {
                    set("backing_off", Some(e), false);
                    Some(RETRY)
                }
            };
            if let Some(wait) = pause {
                let woken = stop.wake.notified();
                if stop.stopped() {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = woken => break,
                    _ = shutdown.changed() => break,
                }
            }
        }
        set("stopped", None, false);
        tracing::info!(channel_id = %ch.row.id, "channel poller stopped");
    }
}
