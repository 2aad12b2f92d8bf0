//! `molecule <command>`: the platform from a terminal (issue 17). Every
//! command is one or two API calls through `molecule-client`, printed as a
//! table, JSON or YAML. Exit codes: 0 done, 1 an error (one line with the
//! server's message), 2 a usage error (clap's).
//!
//! Connection: `--url`/`MOLECULE_URL` and `--token`/`MOLECULE_TOKEN`, else
//! the named context (`--context`, else the current one of `molecule
//! context`), else `http://127.0.0.1:8080` without a token.

pub mod agent;
pub mod channels;
pub mod chat;
pub mod content;
pub mod contexts;
pub mod dashboard;
pub mod doctor;
pub mod progress;
pub mod render;
pub mod resources;
pub mod workspaces;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use molecule_client::{Client, ClientError, Method};
use serde_json::Value;
use std::io::{BufRead, IsTerminal, Write};
use uuid::Uuid;

use contexts::Contexts;
use render::{Format, render};

/// Where the platform listens unless told otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// How to reach the platform, and how to print.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Platform URL (http:// or https://) [env: MOLECULE_URL]
    #[arg(long, global = true, env = "MOLECULE_URL", hide_env = true)]
    pub url: Option<String>,
    /// Admin or workspace token (`--token=…` when it starts with `-`) [env: MOLECULE_TOKEN]
    #[arg(
        long,
        global = true,
        env = "MOLECULE_TOKEN",
        hide_env = true,
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// A named context from `molecule context` instead of the current one
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// table | json | yaml
    #[arg(long, short = 'o', global = true, value_enum, default_value = "table")]
    pub output: Format,
}

/// The client commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Workspaces: list, get, create, update, delete, restart, pause, resume
    #[command(subcommand)]
    Ws(workspaces::Ws),
    /// Recorded events; `--follow` streams them live over /ws
    Events {
        /// Only this workspace's events
        #[arg(long)]
        workspace: Option<Uuid>,
        /// Keep printing events as they happen
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Secrets of a workspace, and global ones (values only on request)
    #[command(subcommand)]
    Secret(resources::Secret),
    /// An agent's card, config, memory, session search and chat
    #[command(subcommand)]
    Agent(agent::AgentCmd),
    /// Talk to a workspace's agent through the platform (streams the answer)
    Chat {
        workspace: Uuid,
        /// Send this one message and exit (else read lines from stdin)
        #[arg(long, short = 'm')]
        message: Option<String>,
    },
    /// The workspace's output, from its container or process
    Logs {
        workspace: Uuid,
        /// Keep printing new output
        #[arg(long, short = 'f')]
        follow: bool,
        /// How many earlier lines to show
        #[arg(long, default_value_t = 100)]
        tail: usize,
    },
    /// The live org in the terminal: tree, events, health, actions, chat
    Dashboard,
    /// A workspace's chat channels (Telegram, Slack)
    #[command(subcommand, visible_alias = "channels")]
    Channel(channels::Channel),
    /// Discovery and access checks
    #[command(subcommand)]
    Registry(agent::Registry),
    /// Delegations between workspaces
    #[command(subcommand, visible_alias = "delegation")]
    Delegations(agent::Delegation),
    /// Workspace templates
    #[command(subcommand, visible_alias = "template")]
    Templates(content::Templates),
    /// Org templates and org import
    #[command(subcommand)]
    Org(content::Org),
    /// Export and import workspaces as bundles
    #[command(subcommand)]
    Bundle(content::Bundle),
    /// A workspace's files
    #[command(subcommand)]
    Files(content::Files),
    /// The plugin registry and a workspace's plugins
    #[command(subcommand, visible_alias = "plugins")]
    Plugin(content::Plugins),
    /// A workspace's LLM traces (from the configured Langfuse)
    Traces { workspace: Uuid },
    /// The agent's own transcript
    Transcript {
        workspace: Uuid,
        #[arg(long)]
        since: Option<u64>,
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Shell completions for bash, zsh, fish, elvish or powershell
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page (roff), for `man -l -`
    Man,
    /// A workspace's cron schedules
    #[command(subcommand)]
    Schedule(resources::Schedule),
    /// Human approvals
    #[command(subcommand, visible_alias = "approval")]
    Approvals(resources::Approvals),
    /// A workspace's activity log
    Activity {
        workspace: Uuid,
        /// Only rows of this activity type
        #[arg(long = "type")]
        kind: Option<String>,
    },
    /// Any API call: `molecule api GET /workspaces`, `molecule api POST /path '{"k":1}'`
    Api {
        method: String,
        path: String,
        /// JSON body
        body: Option<String>,
    },
    /// Named connections (URL and token), kept in ~/.config/molecule/config.json
    #[command(subcommand)]
    Context(contexts::ContextCmd),
    /// Check the platform and this machine: PASS / WARN / FAIL with the fix
    Doctor,
}

/// Runs `command`; the process's exit code.
pub fn run(conn: Connection, command: Command) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(&conn, command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line; a server refusal as its message.
fn one_line(e: &anyhow::Error) -> String {
    if let Some(ClientError::Http {
        status, message, ..
    }) = e.downcast_ref::<ClientError>()
    {
        return format!("{message} (HTTP {status})");
    }
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// The client `conn` names.
fn client(conn: &Connection) -> Result<Client> {
    Ok(client_and_url(conn)?.0)
}

/// The client `conn` names and the URL it calls.
fn client_and_url(conn: &Connection) -> Result<(Client, String)> {
    let contexts = Contexts::load()?;
    let entry = contexts.pick(conn.context.as_deref())?.cloned();
    let url = conn
        .url
        .clone()
        .or_else(|| entry.as_ref().map(|e| e.url.clone()))
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("the platform URL must start with http:// or https://, got {url:?}");
    }
    let token = conn.token.clone().or_else(|| entry.and_then(|e| e.token));
    Ok((Client::new(url.clone()).with_token(token), url))
}

/// One API call; the answer's JSON (`null` when empty). A status ≥ 400 is
/// an error carrying the server's message.
async fn call(c: &Client, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
    let r = c.request(method, path, body.as_ref()).await?;
    if r.status >= 400 {
        return Err(ClientError::from_http(r.status, &r.body).into());
    }
    Ok(r.json().unwrap_or(Value::Null))
}

fn print(conn: &Connection, value: &Value, columns: &[&str]) {
    println!("{}", render(value, conn.output, columns));
}

/// `path?k=v&…` with the given values percent-encoded, unset ones left out.
fn query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
        .collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// One path segment or query value, percent-encoded.
fn segment(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn execute(conn: &Connection, command: Command) -> Result<()> {
    match command {
        Command::Context(cmd) => return contexts::command(conn, cmd),
        Command::Completions { shell } => {
            let mut cmd = crate::cli_command();
            clap_complete::generate(shell, &mut cmd, "molecule", &mut std::io::stdout());
            return Ok(());
        }
        Command::Man => {
            clap_mangen::Man::new(crate::cli_command()).render(&mut std::io::stdout())?;
            return Ok(());
        }
        _ => {}
    }
    if let Command::Doctor = command {
        let (c, url) = client_and_url(conn)?;
        if !doctor::doctor(conn, &c, &url).await? {
            bail!("a check failed (see FAIL above)");
        }
        return Ok(());
    }
    let c = client(conn)?;
    match command {
        Command::Ws(cmd) => workspaces::ws(conn, &c, cmd).await?,
        Command::Events { workspace, follow } => {
            workspaces::events(conn, &c, workspace, follow).await?
        }
        Command::Secret(cmd) => resources::secret(conn, &c, cmd).await?,
        Command::Schedule(cmd) => resources::schedule(conn, &c, cmd).await?,
        Command::Approvals(cmd) => resources::approvals(conn, &c, cmd).await?,
        Command::Delegations(cmd) => agent::delegation(conn, &c, cmd).await?,
        Command::Agent(cmd) => agent::agent_cmd(conn, &c, cmd).await?,
        Command::Chat { workspace, message } => agent::chat(conn, &c, workspace, message).await?,
        Command::Logs {
            workspace,
            follow,
            tail,
        } => agent::logs(&c, workspace, tail, follow).await?,
        Command::Dashboard => dashboard::dashboard(c).await?,
        Command::Registry(cmd) => agent::registry(conn, &c, cmd).await?,
        Command::Channel(cmd) => channels::channel(conn, &c, cmd).await?,
        Command::Templates(cmd) => content::templates(conn, &c, cmd).await?,
        Command::Org(cmd) => content::org(conn, &c, cmd).await?,
        Command::Bundle(cmd) => content::bundle(conn, &c, cmd).await?,
        Command::Files(cmd) => content::files(conn, &c, cmd).await?,
        Command::Plugin(cmd) => content::plugins(conn, &c, cmd).await?,
        Command::Traces { workspace } => content::traces(conn, &c, workspace).await?,
        Command::Transcript {
            workspace,
            since,
            limit,
        } => content::transcript(conn, &c, workspace, since, limit).await?,
        Command::Activity { workspace, kind } => {
            resources::activity(conn, &c, workspace, kind).await?
        }
        Command::Api { method, path, body } => {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .with_context(|| format!("{method:?} is not an HTTP method"))?;
            let body = body
                .map(|b| serde_json::from_str::<Value>(&b))
                .transpose()
                .context("the body is not JSON")?;
            let path = if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            };
            let v = call(&c, method, &path, body).await?;
            print(conn, &v, &[]);
        }
        Command::Context(_) | Command::Doctor | Command::Completions { .. } | Command::Man => {
            unreachable!("handled above")
        }
    }
    Ok(())
}

/// Asks on the terminal; `false` without one.
fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
