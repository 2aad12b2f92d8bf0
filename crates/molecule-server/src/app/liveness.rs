//! In-memory liveness state, backed by `last_heartbeat_at` in the store:
//! per-workspace heartbeat deadlines (the TTL), the buffer that coalesces
//! heartbeat statistics into batched writes, and the URL cache.
//!
//! Liveness itself is exact: a heartbeat moves the deadline at once. Only the
//! statistics columns are written in batches, and reads overlay what is
//! still buffered.

use molecule_store::HeartbeatWrite;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Clone, Default)]
pub struct Liveness {
    deadlines: Arc<Mutex<HashMap<Uuid, Instant>>>,
}

impl Liveness {
    /// The workspace proved it is alive now; it must do so again within `ttl`.
    pub fn touch(&self, id: Uuid, ttl: Duration) {
        self.set_deadline(id, Instant::now() + ttl);
    }

    pub fn set_deadline(&self, id: Uuid, at: Instant) {
        if let Ok(mut d) = self.deadlines.lock() {
            d.insert(id, at);
        }
    }

    pub fn forget(&self, id: Uuid) {
        if let Ok(mut d) = self.deadlines.lock() {
            d.remove(&id);
        }
    }

    /// Remove and return every workspace whose deadline passed.
    pub fn take_expired(&self, now: Instant) -> Vec<Uuid> {
        let Ok(mut d) = self.deadlines.lock() else {
            return Vec::new();
        };
        let expired: Vec<Uuid> = d
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            d.remove(id);
        }
        expired
    }

    pub fn is_tracked(&self, id: Uuid) -> bool {
        self.deadlines
            .lock()
            .map(|d| d.contains_key(&id))
            .unwrap_or(false)
    }
}

/// Latest heartbeat statistics per workspace, waiting to be written.
#[derive(Clone, Default)]
pub struct HeartbeatBuffer {
    pending: Arc<Mutex<HashMap<Uuid, HeartbeatWrite>>>,
}

impl HeartbeatBuffer {
    pub fn push(&self, beat: HeartbeatWrite) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(beat.id, beat);
        }
    }

    pub fn take(&self) -> Vec<HeartbeatWrite> {
        self.pending
            .lock()
            .map(|mut p| p.drain().map(|(_, v)| v).collect())
            .unwrap_or_default()
    }

    /// Put back a batch that failed to write, unless newer beats arrived.
    pub fn restore(&self, beats: Vec<HeartbeatWrite>) {
        if let Ok(mut p) = self.pending.lock() {
            for b in beats {
                p.entry(b.id).or_insert(b);
            }
        }
    }

    pub fn pending(&self, id: Uuid) -> Option<HeartbeatWrite> {
        self.pending.lock().ok()?.get(&id).cloned()
    }

    pub fn discard(&self, id: Uuid) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&id);
        }
    }
}

/// URLs a workspace registered, for discovery and (later) the A2A proxy.
#[derive(Clone, Default)]
pub struct UrlCache {
    internal: Arc<Mutex<HashMap<Uuid, String>>>,
}

impl UrlCache {
    pub fn set_internal(&self, id: Uuid, url: String) {
        if let Ok(mut m) = self.internal.lock() {
            m.insert(id, url);
        }
    }
    pub fn internal(&self, id: Uuid) -> Option<String> {
        self.internal.lock().ok()?.get(&id).cloned()
    }
    pub fn clear(&self, id: Uuid) {
        if let Ok(mut m) = self.internal.lock() {
            m.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_expire_once() {
        let l = Liveness::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let now = Instant::now();
        l.set_deadline(a, now);
        l.set_deadline(b, now + Duration::from_secs(60));
        assert_eq!(l.take_expired(now), vec![a]);
        assert!(l.take_expired(now).is_empty());
        assert!(l.is_tracked(b));
    }

    #[test]
    fn heartbeat_buffer_keeps_latest_and_restore_does_not_clobber() {
        let buf = HeartbeatBuffer::default();
        let id = Uuid::new_v4();
        let beat = |n: i32| HeartbeatWrite {
            id,
            error_rate: 0.0,
            sample_error: String::new(),
            active_tasks: n,
            uptime_seconds: n,
            current_task: String::new(),
            at: chrono::Utc::now(),
        };
        buf.push(beat(1));
        buf.push(beat(2));
        let taken = buf.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].active_tasks, 2);
        buf.push(beat(3));
        buf.restore(taken);
        assert_eq!(buf.pending(id).unwrap().active_tasks, 3);
    }
}
