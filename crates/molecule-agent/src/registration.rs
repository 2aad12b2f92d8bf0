//! Registration and heartbeat with the platform (subsystems.md §7.4), through
//! `molecule-client`.
//!
//! Registration is retried with doubling backoff until it succeeds: the
//! platform may start after the agent. A 410 (the workspace was removed)
//! ends the agent cleanly, at registration or on a heartbeat. The bearer
//! presented is `MOLECULE_WORKSPACE_TOKEN`, else the token persisted in
//! `$MOLECULE_CONFIG_DIR/.auth_token`; a 401 at registration moves on to the
//! other one. A token the platform issues replaces both and is persisted.
//! Heartbeat failures are logged and otherwise ignored: the next beat is the
//! retry.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use molecule_client::{Client, ClientError};
use molecule_types::dto::{Heartbeat, RegisterRequest};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::{PlatformConfig, token_file};
use crate::stats::Stats;

/// Why the registration task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The agent is shutting down.
    Shutdown,
    /// The platform answered 410: this workspace was removed.
    WorkspaceRemoved,
}

/// What a platform call came to.
enum CallError {
    Removed,
    Unauthorized(String),
    Other(String),
}

/// Registers, then heartbeats until shutdown or removal.
pub async fn run(
    platform: PlatformConfig,
    card: Value,
    url: String,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
) -> Ending {
    let http = match crate::outbound::http_client_builder().build() {
        Ok(http) => http,
        Err(e) => {
            // Without a client nothing can be registered; the agent still
            // serves A2A, and the log says why the platform never hears of it.
            tracing::error!(error = %e, "cannot build the platform HTTP client");
            let _ = shutdown.wait_for(|s| *s).await;
            return Ending::Shutdown;
        }
    };
    let base = Client::with_http_client(platform.url.clone(), http);
    let mut tokens: Vec<String> = Vec::new();
    for token in [platform.token.clone(), read_token(&platform.config_dir)]
        .into_iter()
        .flatten()
    {
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }

    let request = RegisterRequest {
        id: platform.workspace_id.clone(),
        url,
        agent_card: card,
    };
    let mut token = tokens.first().cloned();
    let mut delay = platform.register_backoff.0;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let client = base.clone().with_token(token.clone());
        let result = call(platform.request_timeout, client.register(&request)).await;
        match result {
            Ok(answer) => {
                if let Some(issued) = answer.auth_token {
                    persist_token(&platform.config_dir, &issued);
                    token = Some(issued);
                }
                tracing::info!(platform = %platform.url, workspace_id = %platform.workspace_id, attempt, "registered");
                break;
            }
            Err(CallError::Removed) => {
                tracing::info!(workspace_id = %platform.workspace_id, "registration refused: the workspace was removed");
                return Ending::WorkspaceRemoved;
            }
            Err(CallError::Unauthorized(error))
                if token.as_ref().is_some_and(|t| tokens.last() != Some(t)) =>
            {
                let next = tokens
                    .iter()
                    .position(|t| Some(t) == token.as_ref())
                    .and_then(|i| tokens.get(i + 1))
                    .cloned();
                tracing::warn!(attempt, %error, "registration refused the token; trying the persisted one");
                token = next;
                continue;
            }
            Err(CallError::Unauthorized(error) | CallError::Other(error)) => {
                tracing::warn!(attempt, %error, retry_in_ms = delay.as_millis() as u64, "registration failed");
            }
        }
        if wait_or_shutdown(delay, &mut shutdown).await {
            return Ending::Shutdown;
        }
        delay = (delay * 2).min(platform.register_backoff.1);
    }

    let client = base.with_token(token);
    let interval = platform.heartbeat_interval;
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return Ending::Shutdown,
        }
        let snapshot = stats.snapshot();
        let beat = Heartbeat {
            workspace_id: platform.workspace_id.clone(),
            error_rate: snapshot.error_rate,
            sample_error: snapshot.sample_error,
            active_tasks: snapshot.active_tasks,
            uptime_seconds: snapshot.uptime_seconds,
            current_task: snapshot.current_task,
        };
        match call(platform.request_timeout, client.heartbeat(&beat)).await {
            Ok(_) => {
                if failing {
                    tracing::info!("heartbeats reach the platform again");
                }
                failing = false;
            }
            Err(CallError::Removed) => {
                tracing::info!(workspace_id = %platform.workspace_id, "heartbeat refused: the workspace was removed");
                return Ending::WorkspaceRemoved;
            }
            Err(CallError::Unauthorized(error) | CallError::Other(error)) => {
                failing = true;
                tracing::warn!(%error, "heartbeat failed");
            }
        }
    }
}

/// Runs one platform call under `timeout`, sorting the ways it can fail.
async fn call<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(error)) => Err(match error.status() {
            Some(410) => CallError::Removed,
            Some(401) => CallError::Unauthorized(error.to_string()),
            _ => CallError::Other(error.to_string()),
        }),
        Err(_) => Err(CallError::Other(format!(
            "no answer within {:.1}s",
            timeout.as_secs_f64()
        ))),
    }
}

/// Sleeps `delay`; true if shutdown came first.
async fn wait_or_shutdown(delay: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = shutdown.wait_for(|s| *s) => true,
    }
}

/// The persisted token, if a non-empty one is there.
fn read_token(config_dir: &Path) -> Option<String> {
    let token = std::fs::read_to_string(token_file(config_dir)).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// Writes the token owner-readable only, through a rename so a crash never
/// leaves half a token. A failure is logged: the token still works from
/// memory until the agent restarts.
fn persist_token(config_dir: &Path, token: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let path = token_file(config_dir);
    let temporary = config_dir.join(".auth_token.tmp");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(token.as_bytes())
                .and_then(|()| file.sync_all())
        })
        .and_then(|()| std::fs::rename(&temporary, &path));
    match written {
        Ok(()) => tracing::info!(path = %path.display(), "saved the platform-issued token"),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot save the platform-issued token; keeping it in memory only")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_the_config_dir() {
        let dir =
            std::env::temp_dir().join(format!("molecule-agent-token-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create dir");
        assert_eq!(read_token(&dir), None);
        persist_token(&dir, "tok-123");
        assert_eq!(read_token(&dir).as_deref(), Some("tok-123"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(token_file(&dir)).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        std::fs::write(token_file(&dir), "  \n").expect("write");
        assert_eq!(read_token(&dir), None, "a blank file is no token");
        // An unwritable place is survived (logged), not a panic.
        persist_token(Path::new("/nonexistent/molecule-agent"), "x");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
