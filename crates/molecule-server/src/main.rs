//! The `molecule` binary: `molecule serve` runs the platform; every other
//! command is a client of a running one (`cli/`).

use anyhow::Context;

/// The proxy and heartbeat paths allocate many short-lived buffers; glibc's
/// allocator spent ~18 % of the proxy's CPU in a profile, mimalloc far less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
mod cli;

use clap::{Parser, Subcommand};
use molecule_server::Server;
use molecule_server::config::{LogFormat, RawConfig};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "molecule",
    version,
    about = "Control plane for teams of AI agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    conn: cli::Connection,
}

/// The whole command tree, for completions and the man page.
fn cli_command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform (HTTP API, WebSocket, background tasks).
    Serve(ServeArgs),
    #[command(flatten)]
    Client(cli::Command),
}

/// Flags override the environment variables of the same meaning.
#[derive(clap::Args)]
struct ServeArgs {
    /// Port to listen on [env: PORT, default 8080]
    #[arg(long)]
    port: Option<String>,
    /// Address to bind [env: MOLECULE_BIND, default 127.0.0.1]
    #[arg(long)]
    bind: Option<String>,
    /// postgres://… URL; unset = embedded SQLite [env: DATABASE_URL]
    #[arg(long)]
    database_url: Option<String>,
    /// Data directory for the SQLite file [env: MOLECULE_DATA_DIR, default ./molecule-data]
    #[arg(long)]
    data_dir: Option<String>,
    /// development | production [env: MOLECULE_ENV]
    #[arg(long = "env")]
    mode: Option<String>,
    /// Heartbeat TTL in seconds [env: MOLECULE_LIVENESS_TTL_SECONDS, default 180]
    #[arg(long)]
    liveness_ttl: Option<String>,
    /// text | json [env: MOLECULE_LOG_FORMAT]
    #[arg(long)]
    log_format: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => match serve(args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e:?}");
                std::process::ExitCode::from(1)
            }
        },
        Command::Client(command) => cli::run(cli.conn, command),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut raw = RawConfig::from_env(|k| std::env::var(k).ok());
    let flag = |f: Option<String>, r: &mut Option<String>| {
        if f.is_some() {
            *r = f;
        }
    };
    flag(args.port, &mut raw.port);
    flag(args.bind, &mut raw.bind);
    flag(args.database_url, &mut raw.database_url);
    flag(args.data_dir, &mut raw.data_dir);
    flag(args.mode, &mut raw.env);
    flag(args.liveness_ttl, &mut raw.liveness_ttl_seconds);
    flag(args.log_format, &mut raw.log_format);
    let config = match raw.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("molecule: {e}");
            std::process::exit(2);
        }
    };
    init_logging(config.log_format);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let addr = std::net::SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (is the port in use? set PORT)"))?;
        let mode = config.mode;
        let db = match &config.database {
            molecule_server::config::Database::Sqlite(p) => format!("SQLite at {}", p.display()),
            molecule_server::config::Database::Postgres(_) => {
                "PostgreSQL (DATABASE_URL)".to_string()
            }
        };
        let server = Server::start(config, listener).await?;
        tracing::info!(url = %server.url(), mode = ?mode, database = %db, "ready");
        eprintln!(
            "molecule: listening on {} ({mode:?} mode, {db}); the canvas is at {}/",
            server.url(),
            server.url()
        );
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
