//! Every background task of a server, in one table: its name (as
//! `/admin/liveness` shows it), its period, and the `App` method one
//! activation runs. The driver (`mod.rs`) runs each row.

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

use super::Task;
use crate::app::App;
use crate::http::middleware::RateLimiter;

type Activation = Box<dyn for<'a> Fn(&'a App) -> BoxFuture<'a, anyhow::Result<()>> + Send + Sync>;

/// One row of the table.
struct Periodic {
    name: &'static str,
    period: Duration,
    singleton: bool,
    run: Activation,
}

#[async_trait]
impl Task for Periodic {
    fn name(&self) -> &'static str {
        self.name
    }
    fn period(&self) -> Duration {
        self.period
    }
    fn singleton(&self) -> bool {
        self.singleton
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        (self.run)(app).await
    }
}

fn task<F>(name: &'static str, period: Duration, run: F) -> Arc<dyn Task>
where
    F: for<'a> Fn(&'a App) -> BoxFuture<'a, anyhow::Result<()>> + Send + Sync + 'static,
{
    Arc::new(Periodic {
        name,
        period,
        singleton: SINGLETONS.contains(&name),
        run: Box::new(run),
    })
}

/// Tasks one replica runs for all (see `Task::singleton`): each acts on
/// shared rows only. The others keep per-process state (buffers, the
/// proxy's connections, the restart queue, heartbeat deadlines) and run on
/// every replica.
pub const SINGLETONS: &[&str] = &[
    "external-staleness",
    "activity-retention",
    "provision-watchdog",
    // Starts and restarts: the replica leading it is the one governor.
    crate::app::workspaces::lifecycle::PROVISIONER_TASK,
    crate::app::supervision::HEALTH_SWEEP_TASK,
    "scheduler",
    crate::app::delegation::DELEGATION_TASK,
    crate::app::channels::CHANNELS_TASK,
    "approval-expiry",
];

/// The tasks of a server whose HTTP rate limiter is `limiter`.
pub fn all(app: &App, limiter: Arc<RateLimiter>) -> Vec<Arc<dyn Task>> {
    let c = app.config();
    let secs = Duration::from_secs;
    vec![
        // Heartbeat deadlines → `offline`.
        task("liveness", c.liveness_check_every, |app| {
            Box::pin(async move { Ok(app.expire_heartbeats().await.map(drop)?) })
        }),
        // External workspaces whose heartbeats went stale → `offline`.
        task("external-staleness", secs(15), |app| {
            Box::pin(async move { Ok(app.expire_stale_external().await.map(drop)?) })
        }),
        // Buffered heartbeat statistics, written in batches.
        task("heartbeat-flush", c.heartbeat_flush_every, |app| {
            Box::pin(async move {
                let n = app.flush_heartbeats().await?;
                if n > 0 {
                    app.metrics()
                        .add("molecule_heartbeat_rows_written_total", &[], n as f64);
                }
                Ok(())
            })
        }),
        // Queued activity rows, in batches. A caller waiting for its row
        // activates it at once; the period only paces fire-and-forget rows.
        task(
            crate::app::activity::ACTIVITY_WRITER,
            Duration::from_millis(100),
            |app| Box::pin(async move { Ok(app.flush_activity().await.map(drop)?) }),
        ),
        // Activity rows past `ACTIVITY_RETENTION_DAYS`.
        task("activity-retention", c.activity_cleanup_every, |app| {
            Box::pin(async move { Ok(app.purge_activity().await.map(drop)?) })
        }),
        // Rate-limit buckets idle for more than 10 minutes.
        task("rate-limit-gc", secs(60), move |_| {
            let limiter = limiter.clone();
            Box::pin(async move {
                limiter.purge_idle(secs(600));
                Ok(())
            })
        }),
        // The proxy's idle upstream connections that are too old or that
        // their agent closed.
        task("upstream-idle", secs(30), |app| {
            Box::pin(async move {
                app.close_idle_upstreams();
                Ok(())
            })
        }),
        // Due restarts, and workspaces that should run but do not.
        task(
            crate::app::workspaces::lifecycle::PROVISIONER_TASK,
            secs(1),
            |app| Box::pin(async move { Ok(app.provision_pending().await?) }),
        ),
        // Workspaces whose agent never registered → `failed`.
        task("provision-watchdog", secs(5), |app| {
            Box::pin(async move { Ok(app.provision_watchdog().await.map(drop)?) })
        }),
        // Tells restarted agents why they were restarted, once they are back.
        task("restart-context", secs(1), |app| {
            Box::pin(async move { Ok(app.send_restart_contexts().await.map(drop)?) })
        }),
        // Inspects every running container workspace.
        task(
            crate::app::supervision::HEALTH_SWEEP_TASK,
            c.health_sweep_every,
            |app| Box::pin(async move { Ok(app.health_sweep().await.map(drop)?) }),
        ),
        // Claims and fires due schedules.
        task("scheduler", c.scheduler_every, |app| {
            Box::pin(async move { Ok(app.scheduler_tick().await.map(drop)?) })
        }),
        // Dispatches delegations from their tracking rows (and fails those
        // a previous process left in flight).
        task(crate::app::delegation::DELEGATION_TASK, secs(30), |app| {
            Box::pin(async move { Ok(app.dispatch_delegations().await.map(drop)?) })
        }),
        // Channel pollers: one per enabled polling channel, restarted when
        // its config changes (CRUD activates this at once).
        task(crate::app::channels::CHANNELS_TASK, secs(2), |app| {
            Box::pin(async move { Ok(app.reconcile_channels().await?) })
        }),
        // Denies pending approvals older than the approval TTL.
        task("approval-expiry", c.approval_expiry_every, |app| {
            Box::pin(async move { Ok(app.approval_expire().await.map(drop)?) })
        }),
    ]
}
