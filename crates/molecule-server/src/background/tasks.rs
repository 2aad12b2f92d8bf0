//! The platform-core background tasks: heartbeat TTL, external staleness,
//! coalesced heartbeat writes and rate-limit bucket cleanup.

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

use super::Task;
use crate::app::App;
use crate::http::middleware::RateLimiter;

/// Heartbeat deadlines → `offline`.
pub struct LivenessTask {
    pub every: Duration,
}

#[async_trait]
impl Task for LivenessTask {
    fn name(&self) -> &'static str {
        "liveness"
    }
    fn period(&self) -> Duration {
        self.every
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.expire_heartbeats().await?;
        Ok(())
    }
}

/// External workspaces whose heartbeats went stale → `offline`.
pub struct ExternalStalenessTask;

#[async_trait]
impl Task for ExternalStalenessTask {
    fn name(&self) -> &'static str {
        "external-staleness"
    }
    fn period(&self) -> Duration {
        Duration::from_secs(15)
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.expire_stale_external().await?;
        Ok(())
    }
}

/// Writes buffered heartbeat statistics in batches.
pub struct HeartbeatFlushTask {
    pub every: Duration,
}

#[async_trait]
impl Task for HeartbeatFlushTask {
    fn name(&self) -> &'static str {
        "heartbeat-flush"
    }
    fn period(&self) -> Duration {
        self.every
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        let n = app.flush_heartbeats().await?;
        if n > 0 {
            app.metrics
                .add("molecule_heartbeat_rows_written_total", &[], n as f64);
        }
        Ok(())
    }
}

/// Writes queued activity rows in batches. A caller waiting for its row
/// activates it at once; the period only paces fire-and-forget rows.
pub struct ActivityWriterTask;

#[async_trait]
impl Task for ActivityWriterTask {
    fn name(&self) -> &'static str {
        crate::app::activity::ACTIVITY_WRITER
    }
    fn period(&self) -> Duration {
        Duration::from_millis(100)
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.flush_activity().await?;
        Ok(())
    }
}

/// Deletes activity rows past `ACTIVITY_RETENTION_DAYS`.
pub struct ActivityRetentionTask {
    pub every: Duration,
}

#[async_trait]
impl Task for ActivityRetentionTask {
    fn name(&self) -> &'static str {
        "activity-retention"
    }
    fn period(&self) -> Duration {
        self.every
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.purge_activity().await?;
        Ok(())
    }
}

/// Drops rate-limit buckets idle for more than 10 minutes.
pub struct RateLimitGcTask {
    pub limiter: Arc<RateLimiter>,
}

#[async_trait]
impl Task for RateLimitGcTask {
    fn name(&self) -> &'static str {
        "rate-limit-gc"
    }
    fn period(&self) -> Duration {
        Duration::from_secs(60)
    }
    async fn activate(&self, _app: &App) -> anyhow::Result<()> {
        self.limiter.purge_idle(Duration::from_secs(600));
        Ok(())
    }
}

/// Closes the A2A proxy's idle upstream connections that are too old or
/// that their agent closed.
pub struct UpstreamIdleTask;

#[async_trait]
impl Task for UpstreamIdleTask {
    fn name(&self) -> &'static str {
        "upstream-idle"
    }
    fn period(&self) -> Duration {
        Duration::from_secs(30)
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.a2a_http.close_idle();
        Ok(())
    }
}

/// Performs due restarts and starts workspaces that should run.
pub struct ProvisionerTask;

#[async_trait]
impl Task for ProvisionerTask {
    fn name(&self) -> &'static str {
        crate::app::lifecycle::PROVISIONER_TASK
    }
    fn period(&self) -> Duration {
        Duration::from_secs(1)
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.provision_pending().await?;
        Ok(())
    }
}

/// Fails workspaces whose agent never registered.
pub struct ProvisionWatchdogTask;

#[async_trait]
impl Task for ProvisionWatchdogTask {
    fn name(&self) -> &'static str {
        "provision-watchdog"
    }
    fn period(&self) -> Duration {
        Duration::from_secs(5)
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.provision_watchdog().await?;
        Ok(())
    }
}

/// Inspects every running container workspace.
pub struct HealthSweepTask {
    pub every: Duration,
}

#[async_trait]
impl Task for HealthSweepTask {
    fn name(&self) -> &'static str {
        "health-sweep"
    }
    fn period(&self) -> Duration {
        self.every
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.health_sweep().await?;
        Ok(())
    }
}

/// Tells restarted agents why they were restarted, once they are back.
pub struct RestartContextTask;

#[async_trait]
impl Task for RestartContextTask {
    fn name(&self) -> &'static str {
        "restart-context"
    }
    fn period(&self) -> Duration {
        Duration::from_secs(1)
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.send_restart_contexts().await?;
        Ok(())
    }
}

/// Claims and fires due schedules.
pub struct SchedulerTask {
    pub every: Duration,
}

#[async_trait]
impl Task for SchedulerTask {
    fn name(&self) -> &'static str {
        "scheduler"
    }
    fn period(&self) -> Duration {
        self.every
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.scheduler_tick().await?;
        Ok(())
    }
}

/// Denies pending approvals older than the approval TTL.
pub struct ApprovalExpiryTask {
    pub every: Duration,
}

#[async_trait]
impl Task for ApprovalExpiryTask {
    fn name(&self) -> &'static str {
        "approval-expiry"
    }
    fn period(&self) -> Duration {
        self.every
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.approval_expire().await?;
        Ok(())
    }
}

/// Dispatches delegations from their tracking rows (and fails those a
/// previous process left in flight).
pub struct DelegationTask;

#[async_trait]
impl Task for DelegationTask {
    fn name(&self) -> &'static str {
        crate::app::delegation::DELEGATION_TASK
    }
    fn period(&self) -> Duration {
        Duration::from_secs(30)
    }
    async fn activate(&self, app: &App) -> anyhow::Result<()> {
        app.dispatch_delegations().await?;
        Ok(())
    }
}
