//! Progress of an import that starts workspaces: from the `/ws` feed
//! (opened before the import, so no event is missed), how many are online,
//! until all are up, or any failed, or the time is up.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use molecule_client::{Client, EventStream};
use uuid::Uuid;

#[derive(Args, Debug, Clone)]
pub struct Wait {
    /// Return as soon as the platform accepted the import
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting for the workspaces after this many seconds
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// The live feed, opened before an import so no event is missed; `None`
/// with `--no-wait` or when it cannot be opened (no progress then).
pub async fn feed_for(wait: &Wait, c: &Client) -> Option<EventStream> {
    if wait.no_wait {
        return None;
    }
    match c.subscribe().await {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("(no progress: cannot open the live feed: {e})");
            None
        }
    }
}

/// Shows how many of `ids` are up until all are online, or failed, or the
/// time is up. Exit code 1 when any failed.
pub async fn progress(c: &Client, mut feed: EventStream, ids: &[Uuid], timeout: u64) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut state: HashMap<Uuid, (String, String)> = HashMap::new();
    for w in c.list_workspaces().await? {
        if ids.contains(&w.id) {
            state.insert(
                w.id,
                (
                    w.status.as_str().to_string(),
                    w.status_reason.unwrap_or_default(),
                ),
            );
        }
    }
    let tty = std::io::stderr().is_terminal();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut last = String::new();
    loop {
        let up = state
            .values()
            .filter(|(s, _)| s == "online" || s == "degraded")
            .count();
        let failed: Vec<Uuid> = ids
            .iter()
            .copied()
            .filter(|id| state.get(id).is_some_and(|(s, _)| s == "failed"))
            .collect();
        let line = format!(
            "{up}/{} online{}",
            ids.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(", {} failed", failed.len())
            }
        );
        if line != last {
            if tty {
                let bar_len = 20;
                let done = (up + failed.len()) * bar_len / ids.len();
                eprint!(
                    "\r[{}{}] {line}   ",
                    "#".repeat(done),
                    "-".repeat(bar_len - done)
                );
                std::io::stderr().flush()?;
            } else {
                eprintln!("{line}");
            }
            last = line;
        }
        if up + failed.len() == ids.len() {
            if tty {
                eprintln!();
            }
            if failed.is_empty() {
                return Ok(());
            }
            for id in &failed {
                eprintln!("failed: {id}: {}", state[id].1);
            }
            bail!(
                "{} of {} workspaces failed to start",
                failed.len(),
                ids.len()
            );
        }
        let event = match tokio::time::timeout_at(deadline, feed.next()).await {
            Err(_) => {
                if tty {
                    eprintln!();
                }
                bail!(
                    "still waiting after {timeout}s ({last}); `molecule ws list` shows where they are"
                );
            }
            Ok(None) => bail!("the platform closed the live feed ({last})"),
            Ok(Some(e)) => e?,
        };
        let Ok(id) = event.workspace_id.parse::<Uuid>() else {
            continue;
        };
        if !ids.contains(&id) {
            continue;
        }
        let status = match event.event.as_str() {
            "WORKSPACE_ONLINE" => "online",
            "WORKSPACE_DEGRADED" => "degraded",
            "WORKSPACE_PROVISION_FAILED" => "failed",
            "WORKSPACE_OFFLINE" => "offline",
            "WORKSPACE_PROVISIONING" => "provisioning",
            "WORKSPACE_PAUSED" => "paused",
            _ => continue,
        };
        let reason = event.payload["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        state.insert(id, (status.to_string(), reason));
    }
}
