//! `molecule <command>`: the platform from a terminal (issue 17). Every
//! command is one or two API calls through `molecule-client`, printed as a
//! table, JSON or YAML. Exit codes: 0 done, 1 an error (one line with the
//! server's message), 2 a usage error (clap's).
//!
//! Connection: `--url`/`MOLECULE_URL` and `--token`/`MOLECULE_TOKEN`, else
//! the named context (`--context`, else the current one of `molecule
//! context`), else `http://127.0.0.1:8080` without a token.

pub mod agent;
pub mod chat;
pub mod content;
pub mod contexts;
pub mod dashboard;
pub mod doctor;
pub mod render;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use molecule_client::{Client, ClientError, Method};
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal, Write};
use uuid::Uuid;

use contexts::{Contexts, Entry};
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
    Ws(Ws),
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
    Secret(Secret),
    /// An agent's card, config, memory, session search and chat
    #[command(subcommand)]
    Agent(AgentCmd),
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
    Schedule(Schedule),
    /// Human approvals
    #[command(subcommand, visible_alias = "approval")]
    Approvals(Approvals),
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
    Context(ContextCmd),
    /// Check the platform and this machine: PASS / WARN / FAIL with the fix
    Doctor,
}

#[derive(Subcommand, Debug)]
pub enum Ws {
    List,
    Get {
        id: Uuid,
    },
    Create {
        name: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        parent: Option<Uuid>,
        #[arg(long)]
        tier: Option<i32>,
        #[arg(long)]
        template: Option<String>,
        #[arg(long)]
        runtime: Option<String>,
    },
    /// Change fields: `molecule ws update ID --name new --role r`
    Update {
        id: Uuid,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        tier: Option<i32>,
        #[arg(long)]
        parent: Option<Uuid>,
    },
    /// Delete a workspace and its children (asks first unless --yes)
    Delete {
        id: Uuid,
        #[arg(long, short = 'y')]
        yes: bool,
    },
    Restart {
        id: Uuid,
    },
    Pause {
        id: Uuid,
    },
    Resume {
        id: Uuid,
    },
    /// Replace the direct children with the team of the workspace's template
    Expand {
        id: Uuid,
    },
    /// Remove the direct children (their tokens are revoked)
    Collapse {
        id: Uuid,
    },
    /// Revoke the workspace's tokens and mint a new one (admin); printed once
    RotateToken {
        id: Uuid,
    },
}

#[derive(Subcommand, Debug)]
pub enum Secret {
    List {
        workspace: Uuid,
    },
    Set {
        workspace: Uuid,
        key: String,
        value: String,
    },
    Delete {
        workspace: Uuid,
        key: String,
    },
    /// Print the decrypted values (workspace ones override global ones)
    Values {
        workspace: Uuid,
    },
    /// Global secrets every workspace inherits
    ListGlobal,
    SetGlobal {
        key: String,
        value: String,
    },
    DeleteGlobal {
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// The agent card
    #[command(subcommand)]
    Card(agent::Card),
    /// The workspace's runtime config
    #[command(subcommand)]
    Config(agent::ConfigCmd),
    /// The key/value memory
    #[command(subcommand)]
    Memory(agent::Memory),
    /// Scoped memories (LOCAL, TEAM, GLOBAL)
    #[command(subcommand)]
    Memories(agent::Memories),
    /// Search the workspace's activity and memories
    Session {
        #[command(subcommand)]
        cmd: SessionCmd,
    },
    /// Give the workspace an agent running `model`
    Assign { workspace: Uuid, model: String },
    /// Swap the workspace's agent for one running `model`
    Replace { workspace: Uuid, model: String },
    /// Remove the workspace's agent
    Remove { workspace: Uuid },
    /// Move the workspace's agent to another workspace
    Move { workspace: Uuid, target: Uuid },
    /// Same as `molecule chat`
    Chat {
        workspace: Uuid,
        #[arg(long, short = 'm')]
        message: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionCmd {
    Search {
        workspace: Uuid,
        query: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
pub enum Schedule {
    List {
        workspace: Uuid,
    },
    Add {
        workspace: Uuid,
        /// Five-field cron expression, e.g. "0 9 * * 1-5"
        #[arg(long)]
        cron: String,
        #[arg(long)]
        prompt: String,
        #[arg(long, default_value = "")]
        name: String,
        /// IANA time zone
        #[arg(long, default_value = "UTC")]
        timezone: String,
    },
    /// Change fields: `molecule schedule update WS SID --enabled false`
    Update {
        workspace: Uuid,
        schedule: Uuid,
        #[arg(long)]
        cron: Option<String>,
        #[arg(long)]
        prompt: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        timezone: Option<String>,
        #[arg(long)]
        enabled: Option<bool>,
    },
    Run {
        workspace: Uuid,
        schedule: Uuid,
    },
    History {
        workspace: Uuid,
        schedule: Uuid,
    },
    Delete {
        workspace: Uuid,
        schedule: Uuid,
    },
}

#[derive(Subcommand, Debug)]
pub enum Approvals {
    /// Pending approvals across the org (admin)
    Pending,
    /// A workspace's approvals
    List { workspace: Uuid },
    /// Approve or deny
    Decide {
        workspace: Uuid,
        approval: Uuid,
        #[arg(value_parser = ["approved", "denied"])]
        decision: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContextCmd {
    /// Every context; `*` marks the current one
    List,
    /// Add or change a context (and make it current)
    Set {
        name: String,
        #[arg(long)]
        url: String,
        /// Read from the terminal when given as `-`
        #[arg(long)]
        token: Option<String>,
    },
    /// Make a context current
    Use {
        name: String,
    },
    Remove {
        name: String,
    },
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

const WS_COLUMNS: &[&str] = &[
    "id",
    "name",
    "role",
    "status",
    "runtime",
    "parent_id",
    "current_task",
];

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
        Command::Context(cmd) => return context(conn, cmd),
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
    let ws = |id: Uuid| format!("/workspaces/{id}");
    match command {
        Command::Ws(cmd) => match cmd {
            Ws::List => {
                let v = call(&c, Method::GET, "/workspaces", None).await?;
                print(conn, &v, WS_COLUMNS);
            }
            Ws::Get { id } => print(conn, &call(&c, Method::GET, &ws(id), None).await?, &[]),
            Ws::Create {
                name,
                role,
                parent,
                tier,
                template,
                runtime,
            } => {
                let mut body = json!({ "name": name });
                for (k, v) in [
                    ("role", role.map(Value::from)),
                    ("parent_id", parent.map(|p| Value::from(p.to_string()))),
                    ("tier", tier.map(Value::from)),
                    ("template", template.map(Value::from)),
                    ("runtime", runtime.map(Value::from)),
                ] {
                    if let Some(v) = v {
                        body[k] = v;
                    }
                }
                let v = call(&c, Method::POST, "/workspaces", Some(body)).await?;
                print(conn, &v, &[]);
            }
            Ws::Update {
                id,
                name,
                role,
                tier,
                parent,
            } => {
                let mut body = json!({});
                for (k, v) in [
                    ("name", name.map(Value::from)),
                    ("role", role.map(Value::from)),
                    ("tier", tier.map(Value::from)),
                    ("parent_id", parent.map(|p| Value::from(p.to_string()))),
                ] {
                    if let Some(v) = v {
                        body[k] = v;
                    }
                }
                if body.as_object().is_some_and(serde_json::Map::is_empty) {
                    bail!("nothing to update: give --name, --role, --tier or --parent");
                }
                let v = call(&c, Method::PATCH, &ws(id), Some(body)).await?;
                print(conn, &v, &[]);
            }
            Ws::Delete { id, yes } => {
                if !yes {
                    let target = call(&c, Method::GET, &ws(id), None).await?;
                    let name = target["name"].as_str().unwrap_or_default().to_string();
                    if !confirm(&format!(
                        "delete workspace {name} ({id}) and every child of it?"
                    ))? {
                        bail!("not deleted (answer y, or pass --yes)");
                    }
                }
                let v = call(
                    &c,
                    Method::DELETE,
                    &format!("{}?confirm=true", ws(id)),
                    None,
                )
                .await?;
                print(conn, &v, &[]);
            }
            Ws::Restart { id } => {
                let v = call(
                    &c,
                    Method::POST,
                    &format!("{}/restart", ws(id)),
                    Some(json!({})),
                )
                .await?;
                print(conn, &v, &[]);
            }
            Ws::Expand { id } => {
                let v = call(&c, Method::POST, &format!("{}/expand", ws(id)), None).await?;
                print(conn, &v, &[]);
            }
            Ws::Collapse { id } => {
                let v = call(&c, Method::POST, &format!("{}/collapse", ws(id)), None).await?;
                print(conn, &v, &[]);
            }
            Ws::RotateToken { id } => {
                let path = format!("/admin/workspaces/{id}/token");
                print(conn, &call(&c, Method::POST, &path, None).await?, &[]);
            }
            Ws::Pause { id } => {
                let v = call(&c, Method::POST, &format!("{}/pause", ws(id)), None).await?;
                print(conn, &v, &[]);
            }
            Ws::Resume { id } => {
                let v = call(&c, Method::POST, &format!("{}/resume", ws(id)), None).await?;
                print(conn, &v, &[]);
            }
        },
        Command::Events { workspace, follow } => {
            if follow {
                return follow_events(conn, &c, workspace).await;
            }
            let path = match workspace {
                Some(id) => format!("/events/{id}"),
                None => "/events".to_string(),
            };
            let v = call(&c, Method::GET, &path, None).await?;
            print(conn, &v, &["created_at", "event_type", "workspace_id"]);
        }
        Command::Secret(cmd) => match cmd {
            Secret::List { workspace } => {
                let v = call(&c, Method::GET, &format!("{}/secrets", ws(workspace)), None).await?;
                print(conn, &v, &["key", "scope", "updated_at"]);
            }
            Secret::Set {
                workspace,
                key,
                value,
            } => {
                let body = json!({ "key": key, "value": value });
                let v = call(
                    &c,
                    Method::POST,
                    &format!("{}/secrets", ws(workspace)),
                    Some(body),
                )
                .await?;
                print(conn, &v, &[]);
            }
            Secret::Delete { workspace, key } => {
                let path = format!("{}/secrets/{}", ws(workspace), segment(&key));
                print(conn, &call(&c, Method::DELETE, &path, None).await?, &[]);
            }
            Secret::Values { workspace } => {
                let v = call(
                    &c,
                    Method::GET,
                    &format!("{}/secrets/values", ws(workspace)),
                    None,
                )
                .await?;
                print(conn, &v, &[]);
            }
            Secret::ListGlobal => agent::global_secret(conn, &c, agent::GlobalSecret::List).await?,
            Secret::SetGlobal { key, value } => {
                agent::global_secret(conn, &c, agent::GlobalSecret::Set { key, value }).await?
            }
            Secret::DeleteGlobal { key } => {
                agent::global_secret(conn, &c, agent::GlobalSecret::Delete { key }).await?
            }
        },
        Command::Schedule(cmd) => match cmd {
            Schedule::List { workspace } => {
                let v = call(
                    &c,
                    Method::GET,
                    &format!("{}/schedules", ws(workspace)),
                    None,
                )
                .await?;
                print(
                    conn,
                    &v,
                    &[
                        "id",
                        "name",
                        "cron_expr",
                        "timezone",
                        "enabled",
                        "next_run_at",
                    ],
                );
            }
            Schedule::Add {
                workspace,
                cron,
                prompt,
                name,
                timezone,
            } => {
                let body = json!({ "name": name, "cron_expr": cron, "prompt": prompt, "timezone": timezone });
                let v = call(
                    &c,
                    Method::POST,
                    &format!("{}/schedules", ws(workspace)),
                    Some(body),
                )
                .await?;
                print(conn, &v, &[]);
            }
            Schedule::Update {
                workspace,
                schedule,
                cron,
                prompt,
                name,
                timezone,
                enabled,
            } => {
                let mut body = json!({});
                for (k, v) in [
                    ("cron_expr", cron.map(Value::from)),
                    ("prompt", prompt.map(Value::from)),
                    ("name", name.map(Value::from)),
                    ("timezone", timezone.map(Value::from)),
                    ("enabled", enabled.map(Value::from)),
                ] {
                    if let Some(v) = v {
                        body[k] = v;
                    }
                }
                if body.as_object().is_some_and(serde_json::Map::is_empty) {
                    bail!(
                        "nothing to update: give --cron, --prompt, --name, --timezone or --enabled"
                    );
                }
                let path = format!("{}/schedules/{schedule}", ws(workspace));
                print(
                    conn,
                    &call(&c, Method::PATCH, &path, Some(body)).await?,
                    &[],
                );
            }
            Schedule::Run {
                workspace,
                schedule,
            } => {
                let path = format!("{}/schedules/{schedule}/run", ws(workspace));
                print(conn, &call(&c, Method::POST, &path, None).await?, &[]);
            }
            Schedule::History {
                workspace,
                schedule,
            } => {
                let path = format!("{}/schedules/{schedule}/history", ws(workspace));
                let v = call(&c, Method::GET, &path, None).await?;
                print(
                    conn,
                    &v,
                    &["created_at", "status", "duration_ms", "error_detail"],
                );
            }
            Schedule::Delete {
                workspace,
                schedule,
            } => {
                let path = format!("{}/schedules/{schedule}", ws(workspace));
                print(conn, &call(&c, Method::DELETE, &path, None).await?, &[]);
            }
        },
        Command::Approvals(cmd) => match cmd {
            Approvals::Pending => {
                let v = call(&c, Method::GET, "/approvals/pending", None).await?;
                print(
                    conn,
                    &v,
                    &["id", "workspace_name", "action", "reason", "created_at"],
                );
            }
            Approvals::List { workspace } => {
                let v = call(
                    &c,
                    Method::GET,
                    &format!("{}/approvals", ws(workspace)),
                    None,
                )
                .await?;
                print(
                    conn,
                    &v,
                    &["id", "action", "status", "decided_by", "created_at"],
                );
            }
            Approvals::Decide {
                workspace,
                approval,
                decision,
            } => {
                let path = format!("{}/approvals/{approval}/decide", ws(workspace));
                let body = json!({ "decision": decision });
                print(conn, &call(&c, Method::POST, &path, Some(body)).await?, &[]);
            }
        },
        Command::Delegations(cmd) => agent::delegation(conn, &c, cmd).await?,
        Command::Agent(cmd) => match cmd {
            AgentCmd::Card(cmd) => agent::card(conn, &c, cmd).await?,
            AgentCmd::Config(cmd) => agent::config(conn, &c, cmd).await?,
            AgentCmd::Memory(cmd) => agent::memory(conn, &c, cmd).await?,
            AgentCmd::Memories(cmd) => agent::memories(conn, &c, cmd).await?,
            AgentCmd::Session {
                cmd:
                    SessionCmd::Search {
                        workspace,
                        query,
                        limit,
                    },
            } => content::session_search(conn, &c, workspace, query, limit).await?,
            AgentCmd::Assign { workspace, model } => {
                let path = format!("{}/agent", ws(workspace));
                print(
                    conn,
                    &call(&c, Method::POST, &path, Some(json!({ "model": model }))).await?,
                    &[],
                );
            }
            AgentCmd::Replace { workspace, model } => {
                let path = format!("{}/agent", ws(workspace));
                print(
                    conn,
                    &call(&c, Method::PATCH, &path, Some(json!({ "model": model }))).await?,
                    &[],
                );
            }
            AgentCmd::Remove { workspace } => {
                let path = format!("{}/agent", ws(workspace));
                print(conn, &call(&c, Method::DELETE, &path, None).await?, &[]);
            }
            AgentCmd::Move { workspace, target } => {
                let path = format!("{}/agent/move", ws(workspace));
                let body = json!({ "target_workspace_id": target });
                print(conn, &call(&c, Method::POST, &path, Some(body)).await?, &[]);
            }
            AgentCmd::Chat { workspace, message } => {
                agent::chat(conn, &c, workspace, message).await?
            }
        },
        Command::Chat { workspace, message } => agent::chat(conn, &c, workspace, message).await?,
        Command::Logs {
            workspace,
            follow,
            tail,
        } => agent::logs(&c, workspace, tail, follow).await?,
        Command::Dashboard => dashboard::dashboard(c).await?,
        Command::Registry(cmd) => agent::registry(conn, &c, cmd).await?,
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
            let mut path = format!("{}/activity", ws(workspace));
            if let Some(k) = kind {
                path = format!("{path}?type={k}");
            }
            let v = call(&c, Method::GET, &path, None).await?;
            print(
                conn,
                &v,
                &["created_at", "activity_type", "method", "status", "summary"],
            );
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

/// `events --follow`: one line (or JSON document) per event until the
/// platform closes the connection.
async fn follow_events(conn: &Connection, c: &Client, workspace: Option<Uuid>) -> Result<()> {
    let mut stream = c.subscribe().await?;
    while let Some(event) = stream.next().await {
        let event = event?;
        if workspace.is_some_and(|w| event.workspace_id != w.to_string()) {
            continue;
        }
        match conn.output {
            Format::Table => println!(
                "{}  {:<28}  {}",
                event.timestamp.format("%H:%M:%S%.3f"),
                event.event,
                event.workspace_id
            ),
            _ => println!("{}", serde_json::to_string(&event)?),
        }
        std::io::stdout().flush()?;
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

fn context(conn: &Connection, cmd: ContextCmd) -> Result<()> {
    let mut all = Contexts::load()?;
    match cmd {
        ContextCmd::List => {
            let rows: Vec<Value> = all
                .contexts
                .iter()
                .map(|(name, e)| {
                    json!({
                        "current": if all.current.as_deref() == Some(name) { "*" } else { "" },
                        "name": name,
                        "url": e.url,
                        "token": if e.token.is_some() { "set" } else { "" },
                    })
                })
                .collect();
            print(
                conn,
                &Value::Array(rows),
                &["current", "name", "url", "token"],
            );
        }
        ContextCmd::Set { name, url, token } => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("--url must start with http:// or https://");
            }
            let token = match token.as_deref() {
                Some("-") => {
                    eprint!("token for {name}: ");
                    std::io::stderr().flush()?;
                    let mut t = String::new();
                    std::io::stdin().lock().read_line(&mut t)?;
                    Some(t.trim().to_string()).filter(|t| !t.is_empty())
                }
                other => other.map(str::to_owned),
            };
            all.contexts.insert(name.clone(), Entry { url, token });
            all.current = Some(name.clone());
            all.save()?;
            println!(
                "context {name} saved and in use ({})",
                contexts::path()?.display()
            );
        }
        ContextCmd::Use { name } => {
            if !all.contexts.contains_key(&name) {
                bail!("no context named {name:?} (see `molecule context list`)");
            }
            all.current = Some(name.clone());
            all.save()?;
            println!("using context {name}");
        }
        ContextCmd::Remove { name } => {
            if all.contexts.remove(&name).is_none() {
                bail!("no context named {name:?}");
            }
            if all.current.as_deref() == Some(name.as_str()) {
                all.current = None;
            }
            all.save()?;
            println!("context {name} removed");
        }
    }
    Ok(())
}
