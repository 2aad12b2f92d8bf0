//! The `molecule-agent` binary: reads the environment (the table is in
//! `config.rs`), binds `AGENT_HOST:PORT`, runs the agent until
//! SIGTERM/SIGINT or until the platform says the workspace was removed, then
//! shuts down gracefully. `--help` and `--version` print and exit;
//! `fs-rm <path>…` removes files under /configs for the platform (see
//! `molecule_agent::fs_rm`); any other argument is refused (exit 2). Exit codes: 0 after a clean stop or
//! removal, 1 on a configuration or start-up error, and whatever
//! `MOLECULE_AGENT_EXIT_AT_START` asks for (a fault hook for the platform's
//! crash-loop tests).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

const HELP: &str = "\
molecule-agent: the Molecule reference workspace runtime (an A2A agent).

Usage: molecule-agent [--help | --version]
       molecule-agent fs-rm <path>...

Without arguments it runs the agent: it is configured by environment
variables and an optional $MOLECULE_CONFIG_DIR/config.yaml, then serves A2A
(JSON-RPC 2.0, SSE streaming) on AGENT_HOST:PORT and, with PLATFORM_URL,
registers with the platform and heartbeats.

fs-rm <path>...  removes each path recursively and exits (the image has no
                 shell; the platform's files API runs this). Only /configs
                 (meaning everything inside it) and paths below it are
                 accepted, after resolving . and .. ; symlinks are removed,
                 never followed; a missing path is not an error. Exits 0
                 when every path is gone, 1 when any was refused or failed.

Environment:
  AGENT_HOST, AGENT_PORT or PORT   listen address (0.0.0.0, 8000)
  AGENT_URL                        URL advertised in the card and at registration
  AGENT_NAME, AGENT_DESCRIPTION    card name and description
  PLATFORM_URL                     platform to register with; unset = standalone
  WORKSPACE_ID                     this workspace's id (required with PLATFORM_URL)
  MOLECULE_WORKSPACE_TOKEN         bearer presented to the platform
  MOLECULE_CONFIG_DIR              config.yaml and .auth_token (/configs)
  HEARTBEAT_INTERVAL_SECONDS       heartbeat period (30)
  MOLECULE_EXECUTOR                echo, command or openai (echo)
  ECHO_DELAY_MS                    echo: delay before each word (0)
  MOLECULE_COMMAND, MOLECULE_COMMAND_ARGS, MOLECULE_COMMAND_TIMEOUT_SECONDS
                                   command executor: program, args, timeout (60)
  OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL, OPENAI_SYSTEM_PROMPT,
  OPENAI_TIMEOUT_SECONDS           openai executor
  SSL_CERT_FILE                    extra PEM roots for HTTPS
  RUST_LOG                         log filter (info)

Exit codes: 0 after a clean stop or removal, 1 on a configuration or
start-up error, 2 on a bad command line.
";

/// The directory `fs-rm` works in.
const FS_RM_ROOT: &str = molecule_agent::fs_rm::CONFIGS;

/// What the command line asks for. The agent is configured by its
/// environment; the only arguments are for people.
enum Command {
    Run,
    Help,
    Version,
    /// Remove these paths under /configs.
    FsRm(Vec<String>),
    Bad(String),
}

fn command(args: impl Iterator<Item = String>) -> Command {
    let args: Vec<String> = args.collect();
    match args.as_slice() {
        [] => Command::Run,
        [a] if a == "--help" || a == "-h" || a == "help" => Command::Help,
        [a] if a == "--version" || a == "-V" => Command::Version,
        [a, paths @ ..] if a == "fs-rm" && !paths.is_empty() => Command::FsRm(paths.to_vec()),
        _ => Command::Bad(args.join(" ")),
    }
}

fn main() -> ExitCode {
    match command(std::env::args().skip(1)) {
        Command::Run => {}
        Command::Help => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("molecule-agent {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::FsRm(paths) => return fs_rm(&paths),
        Command::Bad(args) => {
            eprintln!(
                "molecule-agent: unexpected arguments `{args}`; it is configured by environment \
                 variables (see `molecule-agent --help`)"
            );
            return ExitCode::from(2);
        }
    }
    if let Some(code) = exit_at_start() {
        std::process::exit(code);
    }
    init_logging();
    // Before any HTTP client exists (a no-op without the `tls` feature).
    molecule_agent::outbound::install_crypto_provider();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("molecule-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Remove every path, reporting each failure; 1 if any failed.
fn fs_rm(paths: &[String]) -> ExitCode {
    let root = std::path::Path::new(FS_RM_ROOT);
    let mut failed = false;
    for path in paths {
        if let Err(e) = molecule_agent::fs_rm::remove(root, path) {
            eprintln!("molecule-agent fs-rm: {e}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Logs to stderr, filtered by `RUST_LOG` in the `target=level,…` syntax
/// (default `info`); colours only on a terminal.
fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;

    let default = || Targets::new().with_default(tracing::Level::INFO);
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value.parse().unwrap_or_else(|e| {
            eprintln!("molecule-agent: RUST_LOG={value:?} is not understood ({e}); using info");
            default()
        }),
        _ => default(),
    };
    let format = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    tracing_subscriber::registry()
        .with(format)
        .with(filter)
        .init();
}

/// The fault hook: `MOLECULE_AGENT_EXIT_AT_START=<code>` exits at once with
/// that code; a value that is not an integer exits with 2.
fn exit_at_start() -> Option<i32> {
    let value = std::env::var("MOLECULE_AGENT_EXIT_AT_START").ok()?;
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    Some(value.parse().unwrap_or_else(|_| {
        eprintln!("molecule-agent: MOLECULE_AGENT_EXIT_AT_START={value:?} is not an exit code");
        2
    }))
}

async fn run() -> anyhow::Result<()> {
    let (config, listen) = molecule_agent::config::from_env(|key| std::env::var(key).ok())?;
    // Handlers first: a SIGTERM that arrives while starting must not kill
    // the process with the default action.
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let listener = tokio::net::TcpListener::bind((listen.host.as_str(), listen.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", listen.host, listen.port))?;
    let mut agent = molecule_agent::start(config, listener).await?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
        _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
        () = agent.workspace_removed() => tracing::info!("the platform removed this workspace; shutting down"),
    }
    agent.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}
