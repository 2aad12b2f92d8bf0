//! Messages between platform processes on one database: `LISTEN/NOTIFY` on
//! one channel. A notification's payload is `=` and the message itself, or
//! `#` and the id of a `bus_messages` row holding a message too long for a
//! notification (PostgreSQL caps payloads at 8000 bytes). Notifications
//! arrive in commit order; a sender that awaits each send before the next
//! keeps its own order.

use sqlx::postgres::{PgListener, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use super::Suspicion;
use crate::{BusMessage, BusReceiver, Result};

const CHANNEL: &str = "molecule_bus";
/// Longest message sent inline (bytes); longer ones go through a row.
const INLINE_MAX: usize = 7000;
/// Messages received but not yet taken by the subscriber.
const QUEUE: usize = 4096;
/// Pause after the listener failed to reconnect.
const RETRY: Duration = Duration::from_secs(1);
/// Silence after which the listener checks that its connection still
/// reaches the server. A server whose host vanished (a failover, a dropped
/// route) sends no FIN, and a connection that only reads would wait for
/// ever, missing every message. (Each process hears its own `hello` at
/// least every few seconds, so a healthy listener is never this quiet.)
const PROBE_AFTER: Duration = Duration::from_secs(15);
/// How long that check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// All or nothing, so a failed send can be repeated without duplicates:
/// short messages only go in one statement (its notifications are queued
/// in array order and delivered together at commit); with a long one among
/// them, the long ones' rows are written first and every notification
/// follows, in order, in the same transaction.
pub(super) async fn send(pool: &PgPool, messages: &[String]) -> Result<()> {
    if messages.iter().all(|m| m.len() <= INLINE_MAX) {
        let mut payloads: Vec<String> = messages.iter().map(|m| format!("={m}")).collect();
        return notify_all(pool, &mut payloads).await;
    }
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM bus_messages WHERE created_at < now() - interval '5 minutes'")
        .execute(&mut *tx)
        .await?;
    let mut payloads: Vec<String> = Vec::with_capacity(messages.len());
    for m in messages {
        if m.len() <= INLINE_MAX {
            payloads.push(format!("={m}"));
            continue;
        }
        let id: i64 =
            sqlx::query_scalar("INSERT INTO bus_messages (body) VALUES ($1) RETURNING id")
                .bind(m)
                .fetch_one(&mut *tx)
                .await?;
        payloads.push(format!("#{id}"));
    }
    notify_all(&mut *tx, &mut payloads).await?;
    tx.commit().await?;
    Ok(())
}

async fn notify_all<'e>(db: impl sqlx::PgExecutor<'e>, payloads: &mut Vec<String>) -> Result<()> {
    if payloads.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
        .bind(CHANNEL)
        .bind(&*payloads)
        .execute(db)
        .await?;
    payloads.clear();
    Ok(())
}

pub(super) async fn subscribe(pool: &PgPool, suspicion: Arc<Suspicion>) -> Result<BusReceiver> {
    let mut listener = listen(pool).await?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let pool = pool.clone();
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                n = tokio::time::timeout(PROBE_AFTER, listener.try_recv()) => n,
                _ = tx.closed() => return,
            };
            // (`try_recv` is cancel-safe: a message half read stays in the
            // connection's buffer.)
            let next = match next {
                Ok(n) => n,
                Err(_silent) => match probe(&mut listener).await {
                    Ok(()) => continue,
                    Err(e) => Err(e),
                },
            };
            let message = match next {
                Ok(Some(n)) => decode(&pool, n.payload()).await,
                // The connection is lost (`None`: closed; an error: broken
                // or refused). The pool's connections may be dead too. The
                // gap is reported once a new listener listens, so nothing
                // sent after the report is missed.
                lost => {
                    match lost {
                        Err(e) => {
                            tracing::warn!(error = %e, "bus listener lost its connection; reconnecting")
                        }
                        _ => tracing::warn!("bus listener's connection closed; reconnecting"),
                    }
                    drop(listener);
                    suspicion.raise();
                    let Some(again) = relisten(&pool, &tx).await else {
                        return;
                    };
                    // The old listener's connection went back to the pool
                    // meanwhile.
                    suspicion.raise();
                    listener = again;
                    BusMessage::Gap
                }
            };
            if tx.send(message).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// A round trip on the listener's own connection, bounded.
async fn probe(listener: &mut PgListener) -> std::result::Result<(), sqlx::Error> {
    match tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(listener)).await {
        Ok(done) => done.map(drop),
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the bus listener's connection did not answer",
        ))),
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection is answered at once (`None`), not after sqlx's
    // own reconnection attempt: this module reconnects.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// A new listener, once one listens (retrying every [`RETRY`]); `None`
/// when the subscriber went away meanwhile.
async fn relisten(pool: &PgPool, tx: &mpsc::Sender<BusMessage>) -> Option<PgListener> {
    loop {
        // Bounded: a connection to a vanished host hangs, it does not fail.
        match tokio::time::timeout(PROBE_AFTER, listen(pool)).await {
            Ok(Ok(l)) => {
                tracing::info!("bus listener listening again");
                return Some(l);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "bus listener cannot listen yet; retrying"),
            Err(_) => tracing::warn!("bus listener cannot reach the database yet; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = tx.closed() => return None,
        }
    }
}

async fn decode(pool: &PgPool, payload: &str) -> BusMessage {
    if let Some(inline) = payload.strip_prefix('=') {
        return BusMessage::Message(inline.to_string());
    }
    let Some(id) = payload
        .strip_prefix('#')
        .and_then(|id| id.parse::<i64>().ok())
    else {
        tracing::warn!("bus: a notification in an unknown format; ignored");
        return BusMessage::Gap;
    };
    match sqlx::query_scalar::<_, String>("SELECT body FROM bus_messages WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
    {
        Ok(Some(body)) => BusMessage::Message(body),
        Ok(None) => BusMessage::Gap,
        Err(e) => {
            tracing::warn!(error = %e, "bus: a long message could not be read");
            BusMessage::Gap
        }
    }
}
