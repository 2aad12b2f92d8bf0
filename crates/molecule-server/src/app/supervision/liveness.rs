//! In-memory liveness state, backed by `last_heartbeat_at` in the store:
//! per-workspace heartbeat deadlines (the TTL), the buffer that coalesces
//! heartbeat statistics into batched writes, and the URL cache.
//!
//! Liveness itself is exact: a heartbeat moves the deadline at once. Only the
//! statistics columns are written in batches, and reads overlay what is
//! still buffered.

use chrono::{DateTime, Utc};
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

    /// Start judging `id` within `ttl` unless a deadline is already set
    /// (a workspace another replica changed: if its heartbeats land there,
    /// the deadline is confirmed against the shared row when it passes).
    pub fn watch(&self, id: Uuid, ttl: Duration) {
        if let Ok(mut d) = self.deadlines.lock() {
            d.entry(id).or_insert_with(|| Instant::now() + ttl);
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

/// Latest heartbeat statistics per workspace, waiting to be written, and
/// when this process last took one (kept after the write). One lock for
/// both: a heartbeat takes it once.
#[derive(Clone, Default)]
pub struct HeartbeatBuffer {
    inner: Arc<Mutex<Beats>>,
}

#[derive(Default)]
struct Beats {
    pending: HashMap<Uuid, HeartbeatWrite>,
    taken: HashMap<Uuid, DateTime<Utc>>,
    /// When `taken` last lost its old entries.
    pruned_at: Option<DateTime<Utc>>,
}

/// How long this process remembers taking a workspace's heartbeat. Another
/// replica's status note arrives within milliseconds (a bus that falls
/// silent for longer is caught up with as after a gap), so an older entry
/// matters to no note: it is of a workspace whose heartbeats go to another
/// replica now, or that was deleted through one.
const TAKEN_KEPT: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

impl HeartbeatBuffer {
    pub fn push(&self, beat: HeartbeatWrite) {
        if let Ok(mut b) = self.inner.lock() {
            b.taken.insert(beat.id, beat.at);
            b.pending.insert(beat.id, beat);
        }
    }

    /// Whether this process took a heartbeat of `id` at `at` or later:
    /// only such a heartbeat can have been judged here against a status
    /// another replica had changed by then. (Unknown: true.)
    pub fn taken_since(&self, id: Uuid, at: DateTime<Utc>) -> bool {
        self.inner
            .lock()
            .map_or(true, |b| b.taken.get(&id).is_some_and(|&last| last >= at))
    }

    /// The heartbeats waiting to be written; at most every [`TAKEN_KEPT`],
    /// the memory of heartbeats taken before `now - TAKEN_KEPT` goes too.
    pub fn take(&self, now: DateTime<Utc>) -> Vec<HeartbeatWrite> {
        let Ok(mut b) = self.inner.lock() else {
            return Vec::new();
        };
        if b.pruned_at.is_none_or(|t| now - t >= TAKEN_KEPT) {
            b.taken.retain(|_, &mut at| now - at < TAKEN_KEPT);
            b.pruned_at = Some(now);
        }
        b.pending.drain().map(|(_, v)| v).collect()
    }

    /// Put back a batch that failed to write, unless newer beats arrived.
    pub fn restore(&self, beats: Vec<HeartbeatWrite>) {
        if let Ok(mut b) = self.inner.lock() {
            for beat in beats {
                b.pending.entry(beat.id).or_insert(beat);
            }
        }
    }

    pub fn pending(&self, id: Uuid) -> Option<HeartbeatWrite> {
        self.inner.lock().ok()?.pending.get(&id).cloned()
    }

    pub fn discard(&self, id: Uuid) {
        if let Ok(mut b) = self.inner.lock() {
            b.pending.remove(&id);
            b.taken.remove(&id);
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
    pub fn clear_all(&self) {
        if let Ok(mut m) = self.internal.lock() {
            m.clear();
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

    fn beat(id: Uuid, at: DateTime<Utc>, n: i32) -> HeartbeatWrite {
        HeartbeatWrite {
            id,
            error_rate: 0.0,
            sample_error: String::new(),
            active_tasks: n,
            uptime_seconds: n,
            current_task: String::new(),
            at,
        }
    }

    #[test]
    fn the_last_heartbeat_taken_is_remembered_after_the_write() {
        let buf = HeartbeatBuffer::default();
        let (id, other) = (Uuid::new_v4(), Uuid::new_v4());
        let at = chrono::Utc::now();
        let second = chrono::Duration::seconds(1);
        buf.push(beat(id, at, 0));
        assert_eq!(buf.take(at).len(), 1, "written");
        assert!(buf.taken_since(id, at - second));
        assert!(buf.taken_since(id, at));
        assert!(!buf.taken_since(id, at + second), "a change after it");
        assert!(!buf.taken_since(other, at - second), "none taken here");
        buf.discard(id);
        assert!(!buf.taken_since(id, at - second), "forgotten");
    }

    #[test]
    fn heartbeats_taken_long_ago_are_forgotten() {
        let buf = HeartbeatBuffer::default();
        let (old, recent) = (Uuid::new_v4(), Uuid::new_v4());
        let start = chrono::Utc::now();
        buf.push(beat(old, start, 0));
        buf.take(start);
        let later = start + TAKEN_KEPT - chrono::TimeDelta::seconds(1);
        buf.push(beat(recent, later, 0));
        buf.take(later);
        assert!(buf.taken_since(old, start), "kept within the bound");
        let much_later = start + TAKEN_KEPT;
        buf.take(much_later);
        assert!(!buf.taken_since(old, start), "forgotten past the bound");
        assert!(buf.taken_since(recent, later), "the recent one is kept");
    }

    #[test]
    fn heartbeat_buffer_keeps_latest_and_restore_does_not_clobber() {
        let buf = HeartbeatBuffer::default();
        let id = Uuid::new_v4();
        let now = chrono::Utc::now();
        buf.push(beat(id, now, 1));
        buf.push(beat(id, now, 2));
        let taken = buf.take(now);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].active_tasks, 2);
        buf.push(beat(id, now, 3));
        buf.restore(taken);
        assert_eq!(buf.pending(id).unwrap().active_tasks, 3);
    }
}

/// What the heartbeat path needs of a workspace, kept in memory so a
/// heartbeat costs no database read: its status and current task. Every
/// status write of this server invalidates the entry (`App::status_written`);
/// a miss reads the row again. A read that raced with a write is not cached:
/// `put` only succeeds when no invalidation happened since `generation()`.
#[derive(Clone, Default)]
pub struct HotState {
    entries: Arc<Mutex<HashMap<Uuid, (molecule_types::WorkspaceStatus, String)>>>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl HotState {
    pub fn get(&self, id: Uuid) -> Option<(molecule_types::WorkspaceStatus, String)> {
        self.entries.lock().ok()?.get(&id).cloned()
    }
    /// Take before reading the row that will be `put`.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }
    pub fn put(
        &self,
        id: Uuid,
        read_at: u64,
        status: molecule_types::WorkspaceStatus,
        task: String,
    ) {
        if let Ok(mut e) = self.entries.lock()
            && self.generation() == read_at
        {
            e.insert(id, (status, task));
        }
    }
    /// Record the task a heartbeat reported (the status is unchanged).
    pub fn set_task(&self, id: Uuid, task: &str) {
        if let Ok(mut e) = self.entries.lock()
            && let Some(entry) = e.get_mut(&id)
        {
            entry.1 = task.to_string();
        }
    }
    pub fn invalidate(&self, id: Uuid) {
        if let Ok(mut e) = self.entries.lock() {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            e.remove(&id);
        }
    }
    /// Forget every entry (changes may have been missed).
    pub fn invalidate_all(&self) {
        if let Ok(mut e) = self.entries.lock() {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            e.clear();
        }
    }
}

#[cfg(test)]
mod hot_tests {
    use super::*;
    use molecule_types::WorkspaceStatus;

    #[test]
    fn a_read_that_raced_with_a_write_is_not_cached() {
        let h = HotState::default();
        let id = Uuid::new_v4();
        let g = h.generation();
        h.invalidate(id); // a status write happened while the row was read
        h.put(id, g, WorkspaceStatus::Online, String::new());
        assert!(h.get(id).is_none());
        let g = h.generation();
        h.put(id, g, WorkspaceStatus::Online, "t".into());
        assert_eq!(h.get(id), Some((WorkspaceStatus::Online, "t".into())));
        h.set_task(id, "u");
        assert_eq!(h.get(id).unwrap().1, "u");
    }
}
