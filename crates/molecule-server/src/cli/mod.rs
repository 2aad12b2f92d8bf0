//! `molecule <command>`: the platform from a terminal (issue 17). Every
//! command is one or two API calls through `molecule-client`, printed as a
//! table, JSON or YAML. Exit codes: 0 done, 1 an error (one line with the
//! server's message), 2 a usage error (clap's).
//!
//! Connection: `--url`/`MOLECULE_URL` and `--token`/`MOLECULE_TOKEN`, else
//! the named context (`--context`, else the current one of `molecule
//! context`), else `http://127.0.0.1:8080` without a token.

pub mod contexts;
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
    /// A workspace's secrets (values are never printed)
    #[command(subcommand)]
    Secret(Secret),
    /// A workspace's cron schedules
    #[command(subcommand)]
    Schedule(Schedule),
    /// Human approvals
    #[command(subcommand)]
    Approvals(Approvals),
    /// A workspace's delegations
    Delegations { workspace: Uuid },
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

async fn execute(conn: &Connection, command: Command) -> Result<()> {
    if let Command::Context(cmd) = command {
        return context(conn, cmd);
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
                let path = format!("{}/secrets/{key}", ws(workspace));
                print(conn, &call(&c, Method::DELETE, &path, None).await?, &[]);
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
        Command::Delegations { workspace } => {
            let v = call(
                &c,
                Method::GET,
                &format!("{}/delegations", ws(workspace)),
                None,
            )
            .await?;
            print(
                conn,
                &v,
                &["delegation_id", "type", "status", "target_id", "created_at"],
            );
        }
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
        Command::Context(_) | Command::Doctor => unreachable!("handled above"),
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
