//! The bus itself: the sender that drains this replica's outbox into the
//! database, and the listener that applies the other replicas' notes.

use futures_util::future::BoxFuture;
use molecule_store::BusMessage;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{HELLO_EVERY, Note, OUTBOX, Outgoing, SEND_BATCH, SEND_RETRY, What};
use crate::app::App;
use crate::app::events::Published;
use crate::app::supervision::HEALTH_SWEEP_TASK;
use crate::app::workspaces::lifecycle::PROVISIONER_TASK;

impl App {
    /// Join the other replicas on the database's bus: the sender and the
    /// listener, for the caller to run (the listener ends at shutdown; the
    /// sender when the process does). On SQLite there is nothing to join.
    pub async fn join_cluster(&self) -> anyhow::Result<Vec<BoxFuture<'static, ()>>> {
        let Some(mut inbox) = self
            .store
            .bus_subscribe()
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen to the other replicas: {e}"))?
        else {
            return Ok(Vec::new());
        };
        let me = Uuid::new_v4();
        let _ = self.cluster.inner.id.set(me);
        let (tx, mut outbox) = mpsc::channel::<Outgoing>(OUTBOX);
        let _ = self.cluster.inner.outbox.set(tx);
        let store = self.store.clone();
        let cluster = self.cluster.clone();
        let sender = Box::pin(async move {
            // Whatever queued up while the last batch was being sent goes
            // in the next round trip, in order. A quiet replica says hello.
            let mut batch = Vec::new();
            cluster.send(What::Hello);
            loop {
                match tokio::time::timeout(HELLO_EVERY, outbox.recv_many(&mut batch, SEND_BATCH))
                    .await
                {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(_) => {
                        cluster.send(What::Hello);
                        continue;
                    }
                }
                // Room was made: if notes were dropped, say so (the note
                // goes after what is queued now, at worst a later batch).
                cluster.own_up_to_lost_notes();
                let (notes, sent): (Vec<String>, Vec<_>) = batch.drain(..).unzip();
                // A note the others never get leaves them stale for good
                // (a revoked token still accepted): a failed batch is sent
                // again, in order, before anything queued after it.
                let mut failed = 0u32;
                while let Err(e) = store.bus_send(&notes).await {
                    if outbox.is_closed() {
                        // This replica is gone: nobody is left to retry for.
                        return;
                    }
                    if failed == 0 {
                        tracing::warn!(error = %e, notes = notes.len(), "bus: notes to the other replicas were not sent; retrying");
                    }
                    failed += 1;
                    tokio::time::sleep(SEND_RETRY).await;
                }
                if failed > 0 {
                    tracing::info!(
                        notes = notes.len(),
                        attempts = failed + 1,
                        "bus: notes sent after a retry"
                    );
                }
                for tx in sent.into_iter().flatten() {
                    let _ = tx.send(());
                }
            }
        });
        let app = self.clone();
        let mut shutdown = self.shutdown.clone();
        let listener = Box::pin(async move {
            loop {
                let message = tokio::select! {
                    m = inbox.recv() => m,
                    _ = shutdown.wait_for(|stop| *stop) => None,
                };
                match message {
                    Some(BusMessage::Message(m)) => app.on_note(me, &m),
                    Some(BusMessage::Gap) => {
                        app.catch_up("this replica missed notes from the others")
                    }
                    None => break,
                }
            }
        });
        tracing::info!(replica = %me, "listening to the other replicas on the database");
        Ok(vec![sender as BoxFuture<'static, ()>, listener])
    }

    fn on_note(&self, me: Uuid, message: &str) {
        let note: Note = match serde_json::from_str(message) {
            Ok(n) => n,
            Err(e) => {
                // A newer replica's note: whatever it said is caught up
                // with as after a gap.
                tracing::warn!(error = %e, "bus: a note this replica does not understand");
                self.catch_up("a note was not understood");
                return;
            }
        };
        if note.from == me {
            return;
        }
        if self.cluster.heard_from(note.from) && matches!(note.what, What::Hello) {
            // A replica that just joined learns of this one at once, and
            // of an open breaker.
            self.cluster.send(What::Hello);
            if self.breaker_open() {
                self.cluster.send(What::Breaker { open: true });
            }
        }
        if let What::Ack { to, applied } = note.what {
            if to == me {
                self.cluster.acknowledged(note.from, applied);
            }
            return;
        }
        let ack = note.ack.map(|applied| What::Ack {
            to: note.from,
            applied,
        });
        match note.what {
            What::Hello | What::Ack { .. } => {}
            What::Missed => {
                let app = self.clone();
                let jobs = &self.cluster.inner.answers;
                jobs.reap();
                jobs.launch(note.from, async move {
                    if app.lead(HEALTH_SWEEP_TASK).await {
                        app.cluster.send(What::Breaker {
                            open: app.breaker_open(),
                        });
                    }
                });
            }
            What::Lost => self.catch_up("another replica dropped notes"),
            What::Bye => {
                if let Ok(mut p) = self.cluster.inner.peers.lock() {
                    p.remove(&note.from);
                }
            }
            What::Workspace { id, status_at } => {
                self.forget_workspace(id, status_at.is_some());
                // Its heartbeats may land only on the replica that changed
                // it: if that one dies, this one still judges it.
                self.liveness.watch(id, self.config.liveness_ttl);
                // Only a heartbeat this replica took after the change can
                // have been judged here against the old status.
                if let Some(at) = status_at.filter(|&at| self.heartbeats.taken_since(id, at)) {
                    let app = self.clone();
                    let inner = &self.cluster.inner;
                    inner.rejudged.reap();
                    // A job per note, not per workspace: one already
                    // running may have read the row before this change.
                    let n = inner.next_rejudged.fetch_add(1, Ordering::Relaxed);
                    inner.rejudged.launch((id, n), async move {
                        if let Err(e) = app.heartbeat_after_status_change(id, at).await {
                            tracing::warn!(workspace_id = %id, error = %e, "a heartbeat could not be judged again");
                        }
                    });
                }
            }
            What::Event {
                workspace_id,
                envelope,
            } => self
                .events
                .relay(Published::new(workspace_id, Arc::new(envelope))),
            What::Superseded { id, reset } => self.superseded(id, reset),
            What::Restarting { id } => {
                if let Ok(mut g) = self.governor.lock() {
                    g.record(id, std::time::Instant::now());
                }
            }
            What::Breaker { open } => {
                if let Ok(mut g) = self.governor.lock() {
                    g.set_frozen(open);
                }
            }
            What::Gone { id, reason } => {
                let app = self.clone();
                let jobs = &self.cluster.inner.gone_reports;
                jobs.reap();
                jobs.launch(id, async move {
                    if app.lead(PROVISIONER_TASK).await {
                        app.workspace_gone(id, &reason).await;
                    }
                });
            }
        }
        // Applied: the sender may be waiting for this replica.
        if let Some(ack) = ack {
            self.cluster.send(ack);
        }
    }
}
