//! Per-workspace resources an agent or an operator keeps: schedules (and
//! the cron scheduler that fires them), secrets (sealed by `secret_box`),
//! memories, approvals and the workspace config.

pub mod approvals;
pub mod cron;
pub mod memories;
pub mod scheduler;
pub mod schedules;
pub mod secret_box;
pub mod secrets;
pub mod workspace_config;
