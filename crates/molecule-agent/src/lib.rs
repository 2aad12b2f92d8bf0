//! `molecule-agent`: Molecule's reference workspace runtime. It serves A2A
//! v0.3 JSON-RPC over HTTP (send, stream, get, cancel), its agent card and a
//! health route; it registers with the platform and heartbeats; and it
//! answers messages with one configured executor (`echo`, `command`,
//! `openai`).
//!
//! [`start`] is the only way to boot, for the binary and for tests alike:
//! bind a listener (tests use `127.0.0.1:0`), pass it in, get a
//! [`RunningAgent`] back.
//!
//! ```no_run
//! # async fn demo() -> Result<(), molecule_agent::AgentError> {
//! use molecule_agent::config::{AgentConfig, ExecutorConfig};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = AgentConfig::standalone(ExecutorConfig::Echo { delay: Default::default() });
//! let agent = molecule_agent::start(config, listener).await?;
//! println!("card at {}/.well-known/agent-card.json", agent.url());
//! agent.shutdown().await
//! # }
//! ```
//!
//! Code map: `http` (routes, framing) → `jsonrpc` (envelopes) and `runner`
//! (method semantics, executions) → `executor` (replies) and `tasks` (task
//! store); `registration` (platform calls) reads `stats`; `config` and
//! `config_file` read the environment and config.yaml; `a2a` and `card` are
//! wire shapes; `outbound` builds HTTP clients (TLS). `fs_rm` is the
//! `molecule-agent fs-rm` subcommand the platform's files API runs.

pub mod a2a;
mod card;
pub mod config;
mod config_file;
pub mod executor;
pub mod fs_rm;
mod http;
pub mod jsonrpc;
pub mod outbound;
mod registration;
mod runner;
pub mod stats;
pub mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::AgentConfig;
use crate::executor::Executor;
use crate::registration::Ending;
use crate::runner::Runner;
use crate::stats::Stats;

/// What can stop the agent from starting or stopping cleanly.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A started agent; see [`start`].
#[derive(Debug)]
pub struct RunningAgent {
    local_addr: SocketAddr,
    url: String,
    card: Value,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    registration: Option<JoinHandle<Ending>>,
    drain_timeout: Duration,
}

/// Serves A2A on `listener` and, when a platform is configured, registers
/// and heartbeats in the background.
pub async fn start(config: AgentConfig, listener: TcpListener) -> Result<RunningAgent, AgentError> {
    outbound::install_crypto_provider();
    let local_addr = listener.local_addr()?;
    let url = config
        .advertised_url
        .clone()
        .unwrap_or_else(|| format!("http://{}:{}", config.hostname, local_addr.port()));
    let card = card::agent_card(&config, &url);
    let executor = Executor::from_config(&config.executor)?;
    let executor_kind = executor.kind();
    let stats = Stats::new();
    let runner = Runner::new(executor, config.task_capacity, Arc::clone(&stats));
    let telemetry = match &config.otel {
        Some(settings) => {
            let client = outbound::http_client_builder()
                .build()
                .map_err(|e| AgentError::Config(format!("cannot build the HTTP client: {e}")))?;
            molecule_telemetry::Telemetry::new(
                settings.clone(),
                Arc::new(outbound::OtlpTransport(client)),
            )
        }
        None => molecule_telemetry::Telemetry::disabled(),
    };
    let router = http::router(Arc::new(http::HttpState {
        card: card.clone(),
        runner,
        telemetry,
    }));

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut server_shutdown = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|s| *s).await;
            })
            .await
    });
    let registration = config.platform.clone().map(|platform| {
        tokio::spawn(registration::run(
            platform,
            card.clone(),
            url.clone(),
            stats,
            shutdown_rx,
        ))
    });
    tracing::info!(
        %local_addr,
        %url,
        executor = executor_kind,
        platform = config.platform.as_ref().map(|p| p.url.as_str()).unwrap_or("none (standalone)"),
        "molecule-agent serving A2A"
    );
    Ok(RunningAgent {
        local_addr,
        url,
        card,
        shutdown,
        server,
        registration,
        drain_timeout: config.drain_timeout,
    })
}

impl RunningAgent {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL advertised in the card and at registration.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The agent card served and registered.
    pub fn card(&self) -> &Value {
        &self.card
    }

    /// Resolves when the platform says this workspace was removed (410); the
    /// agent should then shut down. Never resolves for a standalone agent.
    /// Cancel-safe.
    pub async fn workspace_removed(&mut self) {
        let Some(handle) = self.registration.as_mut() else {
            return std::future::pending().await;
        };
        let ending = handle.await;
        self.registration = None;
        match ending {
            Ok(Ending::WorkspaceRemoved) => {}
            Ok(Ending::Shutdown) => std::future::pending().await,
            Err(error) => {
                tracing::error!(%error, "the registration task died; the platform will see this agent go silent");
                std::future::pending().await
            }
        }
    }

    /// Stops accepting connections, stops heartbeating, and waits up to the
    /// drain timeout for open requests (including streams) to finish.
    pub async fn shutdown(mut self) -> Result<(), AgentError> {
        let _ = self.shutdown.send(true);
        if let Some(registration) = self.registration.take() {
            // It is waiting on a timer or one bounded platform call; there is
            // nothing to finish.
            registration.abort();
        }
        match tokio::time::timeout(self.drain_timeout, &mut self.server).await {
            Ok(Ok(served)) => Ok(served?),
            Ok(Err(join)) => Err(AgentError::Io(std::io::Error::other(join))),
            Err(_) => {
                tracing::warn!(
                    timeout_s = self.drain_timeout.as_secs_f64(),
                    "open requests outlived the drain timeout; closing them"
                );
                self.server.abort();
                Ok(())
            }
        }
    }
}
