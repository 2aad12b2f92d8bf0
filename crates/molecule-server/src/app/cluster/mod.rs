//! Replicas on one database (PostgreSQL) keep each other current through
//! the store's bus (`LISTEN/NOTIFY`): a change to a workspace made on one
//! replica drops what the others cached about it (status, proxy target,
//! URL, parent, tokens — the next use re-reads the row), every event goes
//! to the live subscribers of every replica, and a runtime one replica saw
//! gone is reported to the one governor (the replica that leads the
//! provisioner task). On SQLite there is one process and none of this
//! runs.
//!
//! Messages are small: an id, or an event as its envelope. A replica sends
//! from one queue, in order, so its invalidation of a workspace precedes
//! the event that announces the change.

mod bus;

use chrono::{DateTime, Utc};
use molecule_types::EventEnvelope;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::background::jobs::Jobs;

use super::App;
use super::events::Published;
use super::workspaces::lifecycle::PROVISIONER_TASK;

/// Messages queued for sending before new ones are dropped (with a warning):
/// the database is unreachable or far behind.
const OUTBOX: usize = 65_536;
/// Most notes sent in one round trip.
const SEND_BATCH: usize = 256;
/// Pause before a failed batch of notes is sent again.
const SEND_RETRY: Duration = Duration::from_millis(500);

/// A note on its way out, and who waits for it to be sent.
type Outgoing = (String, Option<oneshot::Sender<()>>);

#[derive(Debug, Serialize, Deserialize)]
struct Note {
    /// The sending replica (a replica ignores its own notes).
    from: Uuid,
    /// Set when the sender waits until every other replica has applied the
    /// note (each answers with an `ack` note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ack: Option<u64>,
    #[serde(flatten)]
    what: What,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum What {
    // Field names must differ from `Note`'s (`from`, `ack`): the variant is
    // flattened into the note.
    /// Something about a workspace changed: status, URL, parent, tokens.
    /// `status_at`: its status was written then (a heartbeat taken after
    /// it, judged against the old status, is judged again).
    Workspace {
        id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status_at: Option<DateTime<Utc>>,
    },
    /// An event for the live subscribers.
    Event {
        workspace_id: Option<Uuid>,
        envelope: EventEnvelope,
    },
    /// A runtime was seen gone by a replica that does not govern restarts.
    Gone { id: Uuid, reason: String },
    /// The sender is here (sent at start and when it has been quiet).
    Hello,
    /// The sender is shutting down: nobody waits for it any more.
    Bye,
    /// The sender applied the note of replica `to` numbered `applied`
    /// (its `ack`; a field of its own name, as `ack` is the note's).
    Ack { to: Uuid, applied: u64 },
    /// An operator restarted, resumed or paused a workspace on the sending
    /// replica: a restart the governor queued and a start in flight are
    /// void, and (`reset`) its crash-loop history is cleared.
    Superseded { id: Uuid, reset: bool },
    /// The governor restarts `id`: the other replicas count it too, so a
    /// new governor (after a takeover) keeps the crash-loop history.
    Restarting { id: Uuid },
    /// The fleet breaker is open (or closed again): every replica's
    /// governor holds it, so it survives a move of the health sweep or of
    /// the restarts to another replica. Also sent to a replica that joins
    /// while it is open.
    Breaker { open: bool },
    /// The sender's listener was cut off and listens again: notes sent
    /// meanwhile are lost to it. The replica leading the health sweep
    /// answers with the breaker's state, open or closed.
    Missed,
    /// The sender dropped notes of its own (its outgoing queue was full):
    /// the others catch up as after a gap of their own.
    Lost,
}

/// This replica's end of the bus: who it is and its outgoing queue (set
/// once the bus is joined; empty on SQLite).
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<ClusterInner>,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            inner: Arc::new(ClusterInner {
                id: OnceLock::new(),
                outbox: OnceLock::new(),
                waiting: Mutex::default(),
                next_ack: AtomicU64::new(0),
                peers: Mutex::default(),
                overflowed: AtomicBool::new(false),
                gone_reports: Jobs::new("gone report", 4),
                answers: Jobs::new("breaker answer", 4),
                catch_up: Jobs::new("bus catch-up", 1),
                rejudged: Jobs::new("heartbeat judged again", 4),
                next_rejudged: AtomicU64::new(0),
                losses: AtomicU64::new(0),
                losses_covered: AtomicU64::new(0),
            }),
        }
    }
}

struct ClusterInner {
    id: OnceLock<Uuid>,
    outbox: OnceLock<mpsc::Sender<Outgoing>>,
    /// Senders waiting until every other replica applied a note, by `ack`.
    waiting: Mutex<HashMap<u64, Waiter>>,
    next_ack: AtomicU64,
    /// The other replicas, and when each was last heard from.
    peers: Mutex<HashMap<Uuid, Instant>>,
    /// A note was dropped because the outgoing queue was full; the others
    /// are told (`Lost`) once it has room again.
    overflowed: AtomicBool,
    /// Gone reports being handed to the governor (this replica, if it
    /// governs), one per workspace at a time.
    gone_reports: Jobs<Uuid>,
    /// Answers to replicas that missed notes, one per asking replica.
    answers: Jobs<Uuid>,
    /// Heartbeats judged again after another replica's status change (the
    /// transition is conditional: two jobs for one workspace agree).
    rejudged: Jobs<(Uuid, u64)>,
    next_rejudged: AtomicU64,
    /// Catching up after notes were lost, one job per loss (numbered by
    /// `losses`), one at a time; a job whose loss an earlier job's listing
    /// already covered (`losses_covered`) has nothing to do.
    catch_up: Jobs<u64>,
    losses: AtomicU64,
    losses_covered: AtomicU64,
}

/// How long a revocation waits for the other replicas to be told before
/// it answers anyway (the database is down or far behind).
const ACK_WAIT: Duration = Duration::from_secs(2);
/// A replica quiet for this long says hello (so the others know it lives).
const HELLO_EVERY: Duration = Duration::from_secs(5);
/// A replica not heard from for this long is not waited for.
const PEER_TTL: Duration = Duration::from_secs(15);
/// Catch-ups after lost notes start at least this far apart.
const CATCH_UP_SPACING: Duration = Duration::from_secs(1);

/// A sender waiting for the other replicas' acknowledgements.
struct Waiter {
    /// The replicas that must acknowledge.
    expected: HashSet<Uuid>,
    done: Option<oneshot::Sender<()>>,
}

impl Cluster {
    /// Whether other replicas may be listening.
    pub fn joined(&self) -> bool {
        self.inner.outbox.get().is_some()
    }

    fn send(&self, what: What) {
        self.send_note(what, None, None);
    }

    fn send_note(&self, what: What, ack: Option<u64>, sent: Option<oneshot::Sender<()>>) {
        let (Some(outbox), Some(&from)) = (self.inner.outbox.get(), self.inner.id.get()) else {
            return;
        };
        let note = match serde_json::to_string(&Note { from, ack, what }) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "bus: a note could not be encoded");
                return;
            }
        };
        if outbox.try_send((note, sent)).is_err()
            && !self.inner.overflowed.swap(true, Ordering::SeqCst)
        {
            tracing::warn!(
                "bus: the outgoing queue is full; notes to the other replicas are dropped until it drains, then they are told to re-read everything"
            );
        }
    }

    /// Once the outgoing queue has room again after it overflowed, tell
    /// the others that notes were lost (a full queue again keeps the flag
    /// set, and they are told later).
    fn own_up_to_lost_notes(&self) {
        if self.inner.overflowed.swap(false, Ordering::SeqCst) {
            tracing::info!("bus: telling the other replicas that notes of this one were dropped");
            self.send(What::Lost);
        }
    }

    /// Tell the other replicas that workspace `id` changed.
    pub fn workspace_changed(&self, id: Uuid) {
        self.send(What::Workspace {
            id,
            status_at: None,
        });
    }

    /// Tell the other replicas that the status of `id` was written `at`.
    pub fn status_changed(&self, id: Uuid, at: DateTime<Utc>) {
        self.send(What::Workspace {
            id,
            status_at: Some(at),
        });
    }

    /// [`Cluster::workspace_changed`] for each of `ids`, returning once
    /// every other live replica has applied the notes (each acknowledges
    /// the last; they travel and are applied in order), so a revocation
    /// answered here is already in force on the others.
    pub async fn workspaces_changed_everywhere(&self, ids: &[Uuid]) {
        let Some((&id, rest)) = ids.split_last().filter(|_| self.joined()) else {
            return;
        };
        for other in rest {
            self.workspace_changed(*other);
        }
        let expected: HashSet<Uuid> = self.live_peers().into_iter().collect();
        if expected.is_empty() {
            self.workspace_changed(id);
            return;
        }
        let ack = self.inner.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.inner.waiting.lock() {
            let done = Some(tx);
            w.insert(ack, Waiter { expected, done });
        }
        self.send_note(
            What::Workspace {
                id,
                status_at: None,
            },
            Some(ack),
            None,
        );
        if tokio::time::timeout(ACK_WAIT, rx).await.is_err() {
            tracing::warn!(workspace_id = %id, "bus: not every replica confirmed a revocation in time");
        }
        if let Ok(mut w) = self.inner.waiting.lock() {
            w.remove(&ack);
        }
    }

    /// Say goodbye (an orderly shutdown), once the note is sent.
    pub async fn leave(&self) {
        if self.joined() {
            let (tx, rx) = oneshot::channel();
            self.send_note(What::Bye, None, Some(tx));
            Self::sent(Some(rx)).await;
        }
    }

    /// Replica `from` applied note `ack`.
    fn acknowledged(&self, from: Uuid, ack: u64) {
        let Ok(mut waiting) = self.inner.waiting.lock() else {
            return;
        };
        if let Some(w) = waiting.get_mut(&ack) {
            w.expected.remove(&from);
            if w.expected.is_empty()
                && let Some(done) = w.done.take()
            {
                let _ = done.send(());
            }
        }
    }

    /// The other replicas heard from within `PEER_TTL`.
    fn live_peers(&self) -> Vec<Uuid> {
        match self.inner.peers.lock() {
            Ok(p) => p
                .iter()
                .filter(|(_, seen)| seen.elapsed() < PEER_TTL)
                .map(|(id, _)| *id)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Note that `peer` lives; whether it was unknown until now.
    fn heard_from(&self, peer: Uuid) -> bool {
        let Ok(mut p) = self.inner.peers.lock() else {
            return false;
        };
        let new = p.insert(peer, Instant::now()).is_none();
        if new {
            p.retain(|_, seen| seen.elapsed() < PEER_TTL * 4);
        }
        new
    }

    /// Hand an event to the other replicas' live subscribers. The receiver
    /// resolves once the note is sent: an emitter that waits for it before
    /// going on keeps its events in causal order across replicas (the next
    /// event, caused on another replica, is sent after this one).
    pub fn event(&self, published: &Published) -> Option<oneshot::Receiver<()>> {
        if !self.joined() {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.send_note(
            What::Event {
                workspace_id: published.workspace_id,
                envelope: (*published.envelope).clone(),
            },
            None,
            Some(tx),
        );
        Some(rx)
    }

    /// Wait (bounded) for a note to be sent.
    pub async fn sent(rx: Option<oneshot::Receiver<()>>) {
        if let Some(rx) = rx {
            let _ = tokio::time::timeout(ACK_WAIT, rx).await;
        }
    }
}

impl App {
    fn superseded(&self, id: Uuid, reset: bool) {
        if reset && let Ok(mut g) = self.governor.lock() {
            g.reset_workspace(id);
        }
        self.restart_queue.cancel(id);
        self.supersede_start(id);
    }

    /// This replica's governor restarts `id`: the others count it.
    pub(crate) fn restarting_everywhere(&self, id: Uuid) {
        self.cluster.send(What::Restarting { id });
    }

    /// This replica's health sweep opened or closed the fleet breaker: the
    /// others' governors follow.
    pub(crate) fn breaker_everywhere(&self, open: bool) {
        self.cluster.send(What::Breaker { open });
    }

    /// An operator's restart, resume (`reset`: the crash-loop history is
    /// cleared), pause or delete of `id`: every replica, this one included,
    /// drops the restart its governor queued and the start in flight.
    pub(crate) fn supersede(&self, id: Uuid, reset: bool) {
        self.superseded(id, reset);
        self.cluster.send(What::Superseded { id, reset });
    }

    /// Drop what this replica cached about `id`: everything, or after a
    /// status write all but its tokens (a status says nothing about them:
    /// revocations, a deletion's included, come in a note of their own,
    /// see [`App::tokens_revoked`]).
    fn forget_workspace(&self, id: Uuid, status_only: bool) {
        self.hot.invalidate(id);
        self.targets.invalidate(id);
        self.urls.clear(id);
        self.hierarchy.forget(id);
        if !status_only {
            self.tokens.forget(&[id]);
        }
    }

    /// Notes from the other replicas were lost (the listener was cut off
    /// and listens again, another replica's queue overflowed, a note could
    /// not be read): drop every cache at once; then, as a job, tell the
    /// live subscribers to re-read (`RESYNC`), judge every live workspace,
    /// and ask for the breaker's state. The jobs start at least
    /// [`CATCH_UP_SPACING`] apart (during a rolling upgrade a newer
    /// replica's notes this one does not understand may come by the
    /// thousand), each covering every loss counted before it began. A note
    /// missed otherwise (a governor's restart count, an operator's
    /// supersede) is not recovered: it only tunes a restart that still goes
    /// through the one governor.
    fn catch_up(&self, reason: &'static str) {
        self.forget_everything();
        let inner = &self.cluster.inner;
        let loss = inner.losses.fetch_add(1, Ordering::SeqCst) + 1;
        inner.catch_up.reap();
        let app = self.clone();
        inner.catch_up.launch(loss, async move {
            let inner = &app.cluster.inner;
            if inner.losses_covered.load(Ordering::SeqCst) >= loss {
                return;
            }
            let upto = inner.losses.load(Ordering::SeqCst);
            // Their events are lost too: the live subscribers re-read.
            app.events.resync_here(reason);
            match app.rewatch_liveness().await {
                Ok(n) => tracing::info!(workspaces = n, "bus: judging every live workspace again"),
                Err(e) => tracing::warn!(error = %e, "bus: live workspaces could not be listed"),
            }
            app.cluster.send(What::Missed);
            inner.losses_covered.fetch_max(upto, Ordering::SeqCst);
            // Holding the one slot: the next catch-up waits.
            tokio::time::sleep(CATCH_UP_SPACING).await;
        });
    }

    /// Notes may have been lost: drop every cache; each re-reads on use.
    fn forget_everything(&self) {
        tracing::warn!("bus: notes may have been missed; dropping every cache");
        self.hot.invalidate_all();
        self.targets.invalidate_all();
        self.urls.clear_all();
        self.hierarchy.forget_all();
        self.tokens.forget_all();
    }

    /// This replica's id on the bus and the other replicas heard from
    /// lately (sorted); `None` when there is no bus (SQLite).
    pub fn replica(&self) -> Option<(Uuid, Vec<Uuid>)> {
        let me = *self.cluster.inner.id.get()?;
        let mut peers = self.cluster.live_peers();
        peers.sort();
        Some((me, peers))
    }

    /// Something about workspace `id` changed here: the other replicas
    /// drop what they cached about it.
    pub(crate) fn workspace_changed(&self, id: Uuid) {
        self.cluster.workspace_changed(id);
    }

    /// The tokens of `ids` were revoked: forget them here, and return once
    /// every other replica has been told.
    pub(crate) async fn tokens_revoked(&self, ids: &[Uuid]) {
        self.tokens.forget(ids);
        self.cluster.workspaces_changed_everywhere(ids).await;
    }

    /// Whether the runtime-gone report goes to another replica: this one
    /// does not govern restarts. The report is sent (and the workspace
    /// marked offline here, so operators see it at once).
    pub(crate) async fn gone_elsewhere(&self, id: Uuid, reason: &str) -> bool {
        if !self.cluster.joined() || self.lead(PROVISIONER_TASK).await {
            return false;
        }
        let _ = self.mark_offline(id, reason).await;
        self.cluster.send(What::Gone {
            id,
            reason: reason.to_string(),
        });
        true
    }
}

#[cfg(test)]
mod tests;
