//! Event recording and live fan-out. A persisted event gets a
//! `structure_events` row, then every event goes on a broadcast bus that the
//! WebSocket hub reads. The bus never blocks the sender: each subscriber has
//! a bounded queue and a subscriber that falls behind is told to resync.

use chrono::{DateTime, Utc};
use molecule_store::{NewEvent, Store};
use molecule_types::{Event, EventEnvelope, EventType};
use std::sync::Arc;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::App;

/// Events queued per subscriber before it is considered lagging.
pub const SUBSCRIBER_QUEUE: usize = 1024;

/// The WebSocket-only frame that tells a client it missed events and
/// should re-read what it shows: its queue overflowed, or this replica
/// missed notes from the others.
pub const RESYNC: &str = "RESYNC";

/// A `RESYNC` frame's envelope (about no workspace), `payload` saying
/// what was missed.
pub fn resync(payload: serde_json::Value) -> EventEnvelope {
    EventEnvelope {
        event: RESYNC.to_string(),
        workspace_id: String::new(),
        timestamp: Utc::now(),
        payload,
    }
}

/// An event as it travels on the bus.
#[derive(Debug, Clone)]
pub struct Published {
    pub workspace_id: Option<Uuid>,
    pub envelope: Arc<EventEnvelope>,
    /// The envelope as JSON, written once for every subscriber.
    json: Arc<std::sync::OnceLock<String>>,
}

impl Published {
    pub fn new(workspace_id: Option<Uuid>, envelope: Arc<EventEnvelope>) -> Self {
        Self {
            workspace_id,
            envelope,
            json: Arc::default(),
        }
    }

    /// The WebSocket frame's text (serialised by the first subscriber that
    /// asks; the others share it).
    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| serde_json::to_string(&*self.envelope).unwrap_or_default())
    }
}

#[derive(Clone)]
pub struct EventBus {
    store: Arc<dyn Store>,
    tx: broadcast::Sender<Published>,
    /// The other replicas, which push every event to their subscribers too.
    cluster: super::cluster::Cluster,
}

impl EventBus {
    pub fn new(store: Arc<dyn Store>, cluster: super::cluster::Cluster) -> Self {
        let (tx, _) = broadcast::channel(SUBSCRIBER_QUEUE);
        Self { store, tx, cluster }
    }

    /// Push an event another replica emitted to this one's subscribers.
    pub fn relay(&self, published: Published) {
        let _ = self.tx.send(published);
    }

    /// Tell this replica's subscribers (every one of them, whatever its
    /// audience) that events were lost on the way to them: a `RESYNC`
    /// frame whose payload says why.
    pub fn resync_here(&self, reason: &str) {
        let envelope = resync(serde_json::json!({ "reason": reason }));
        self.relay(Published::new(None, Arc::new(envelope)));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.tx.subscribe()
    }

    /// Record (when the type is persisted) and broadcast. A failed insert is
    /// logged and the event is still pushed live: a database hiccup must not
    /// hide a status change from the operators watching.
    pub async fn emit(&self, event: Event) {
        let now = Utc::now();
        if event.event_type.is_persisted() {
            let row = NewEvent {
                id: Uuid::new_v4(),
                event_type: event.event_type.as_str().to_string(),
                workspace_id: event.workspace_id,
                payload: event.payload.clone(),
                created_at: now,
            };
            if let Err(e) = self.store.event_insert(&row).await {
                tracing::error!(error = %e, event = event.event_type.as_str(), "failed to record event");
            }
        }
        let sent = self.publish(event, now);
        super::cluster::Cluster::sent(sent).await;
    }

    /// Someone is watching live: worth building WebSocket-only payloads.
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Broadcast without recording, from synchronous code. For the
    /// WebSocket-only event types.
    pub fn publish_live(&self, event: Event) {
        let _ = self.publish(event, Utc::now());
    }

    /// Push `event` to this replica's subscribers and hand it to the
    /// others; the receiver says when it was handed (see `Cluster::event`).
    fn publish(
        &self,
        event: Event,
        at: DateTime<Utc>,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let envelope = EventEnvelope {
            event: event.event_type.as_str().to_string(),
            workspace_id: event
                .workspace_id
                .map(|u| u.to_string())
                .unwrap_or_default(),
            timestamp: at,
            payload: event.payload,
        };
        let published = Published::new(event.workspace_id, Arc::new(envelope));
        let sent = self.cluster.event(&published);
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(published);
        sent
    }
}

impl App {
    /// The audience rule of a workspace's event stream (`/ws` with a
    /// workspace credential): every event about itself; status events
    /// (no exchange content) about its direct relations, the workspaces its
    /// peers list shows; content events (answers, messages, activity,
    /// delegations, approvals, runs) of another workspace only when the
    /// payload names it as a party (`source_id`/`target_id`). Events about
    /// no workspace (the fleet breaker) are for operators only, but for
    /// `RESYNC`, which every client gets.
    pub async fn event_visible_to(&self, me: Uuid, event: &Published) -> bool {
        let Some(subject) = event.workspace_id else {
            // Events about no workspace are for operators, but for the
            // notice that events were lost, which every client needs.
            return event.envelope.event == RESYNC;
        };
        if subject == me {
            return true;
        }
        let kind = EventType::parse(&event.envelope.event);
        if kind.is_none_or(EventType::carries_content) {
            let me = me.to_string();
            let party = |key: &str| {
                event.envelope.payload.get(key).and_then(|v| v.as_str()) == Some(me.as_str())
            };
            return party("target_id") || party("source_id");
        }
        self.hierarchy.directly_related(me, subject).await
    }
}

impl App {
    /// `GET /events[/:id]`: the newest 100 persisted events (of one
    /// workspace, when `workspace` is given).
    pub async fn event_log(
        &self,
        _: crate::app::auth::AdminAccess,
        workspace: Option<Uuid>,
    ) -> crate::error::AppResult<Vec<molecule_types::dto::StoredEvent>> {
        let rows = self
            .store
            .event_list(workspace, 100)
            .await
            .map_err(crate::error::AppError::internal("query failed"))?;
        Ok(rows
            .into_iter()
            .map(|r| molecule_types::dto::StoredEvent {
                id: r.id,
                event_type: r.event_type,
                workspace_id: r.workspace_id,
                payload: r.payload,
                created_at: r.created_at,
            })
            .collect())
    }

    /// Whether the database answers (readiness).
    pub async fn database_ok(&self) -> bool {
        self.store.ping().await.is_ok()
    }
}
