//! Jobs a background task launches and owns: work that outlives one
//! activation (a container start, a delegated call, a schedule fire). At most
//! `parallel` run at once and at most one per key; the owning task reaps
//! them on each activation and logs any that panicked.

use futures_util::FutureExt;
use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

struct Inner<K> {
    set: JoinSet<()>,
    running: HashSet<K>,
}

/// A keyed, bounded set of jobs. Cheap to clone (shared state).
pub struct Jobs<K> {
    what: &'static str,
    inner: Arc<Mutex<Inner<K>>>,
    slots: Arc<Semaphore>,
}

impl<K> Clone for Jobs<K> {
    fn clone(&self) -> Self {
        Self {
            what: self.what,
            inner: self.inner.clone(),
            slots: self.slots.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> Jobs<K> {
    /// `what` names the jobs in logs ("delegation", ...).
    pub fn new(what: &'static str, parallel: usize) -> Self {
        Self {
            what,
            inner: Arc::new(Mutex::new(Inner {
                set: JoinSet::new(),
                running: HashSet::new(),
            })),
            slots: Arc::new(Semaphore::new(parallel.max(1))),
        }
    }

    /// Launch `job` for `key` unless a job for `key` is already running
    /// (then returns false). The job waits for a free slot before it runs.
    pub fn launch<F>(&self, key: K, job: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        if !inner.running.insert(key.clone()) {
            return false;
        }
        let (shared, slots, what) = (self.inner.clone(), self.slots.clone(), self.what);
        inner.set.spawn(async move {
            let permit = slots.acquire_owned().await;
            let outcome = AssertUnwindSafe(job).catch_unwind().await;
            drop(permit);
            if let Err(panic) = outcome {
                tracing::error!(what, panic = %super::panic_message(&panic), "a background job panicked");
            }
            if let Ok(mut inner) = shared.lock() {
                inner.running.remove(&key);
            }
        });
        true
    }

    /// Whether a job for `key` is launched and not finished.
    pub fn is_running(&self, key: &K) -> bool {
        self.inner
            .lock()
            .map(|i| i.running.contains(key))
            .unwrap_or(false)
    }

    /// How many jobs are launched and not finished.
    pub fn running(&self) -> usize {
        self.inner.lock().map(|i| i.running.len()).unwrap_or(0)
    }

    /// Collect finished jobs. (A job that panicked was logged and freed its
    /// key, so the owning task tries again.)
    pub fn reap(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            while inner.set.try_join_next().is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn one_job_per_key_and_the_key_is_freed_when_it_ends() {
        let jobs = Jobs::new("test", 4);
        let (tx, rx) = oneshot::channel::<()>();
        assert!(jobs.launch(1, async move {
            let _ = rx.await;
        }));
        assert!(!jobs.launch(1, async {}), "same key while running");
        assert!(jobs.is_running(&1));
        let (done_tx, done_rx) = oneshot::channel();
        assert!(jobs.launch(2, async move {
            let _ = done_tx.send(());
        }));
        done_rx.await.unwrap();
        tx.send(()).unwrap();
        while jobs.running() > 0 {
            tokio::task::yield_now().await;
        }
        jobs.reap();
        assert!(jobs.launch(1, async {}), "free again");
    }

    #[tokio::test]
    async fn at_most_parallel_jobs_run_at_once() {
        let jobs = Jobs::new("test", 1);
        let (tx, rx) = oneshot::channel::<()>();
        let (second_tx, mut second_rx) = oneshot::channel::<()>();
        jobs.launch(1, async move {
            let _ = rx.await;
        });
        jobs.launch(2, async move {
            let _ = second_tx.send(());
        });
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(second_rx.try_recv().is_err(), "the second waits for a slot");
        tx.send(()).unwrap();
        second_rx.await.unwrap();
    }

    #[tokio::test]
    async fn a_panicking_job_is_logged_and_frees_its_key() {
        let jobs = Jobs::new("test", 2);
        jobs.launch(7, async { panic!("boom") });
        while jobs.is_running(&7) {
            tokio::task::yield_now().await;
        }
        jobs.reap();
        assert!(jobs.launch(7, async {}));
    }
}
