//! The commands about one workspace's agent: registry, card, config, the
//! key/value memory and scoped memories, session search, global secrets,
//! delegation, traces and transcript, logs, and `chat`.

use anyhow::{Result, bail};
use clap::Subcommand;
use molecule_client::{Client, ClientError, Method};
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal, Write};
use uuid::Uuid;

use super::chat::{self, Conversation, Piece};
use super::render::Format;
use super::{Connection, call, print, query};

#[derive(Subcommand, Debug)]
pub enum Registry {
    /// Where `target` is reachable, as `caller` sees it
    Discover {
        target: Uuid,
        #[arg(long)]
        caller: Uuid,
    },
    /// The workspaces `workspace` may talk to
    Peers { workspace: Uuid },
    /// Whether `caller` may talk to `target`
    CheckAccess { caller: Uuid, target: Uuid },
}

#[derive(Subcommand, Debug)]
pub enum Card {
    /// The agent card the workspace registered
    Get { workspace: Uuid },
    /// Replace the card with a JSON document (`-` reads stdin)
    Set { workspace: Uuid, card: String },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    Get {
        workspace: Uuid,
    },
    /// Replace the config with a JSON document (`-` reads stdin)
    Set {
        workspace: Uuid,
        json: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum Memory {
    List {
        workspace: Uuid,
    },
    Get {
        workspace: Uuid,
        key: String,
    },
    /// The value is JSON when it parses as JSON, else a string
    Set {
        workspace: Uuid,
        key: String,
        value: String,
        /// Forget it after this many seconds
        #[arg(long)]
        ttl: Option<i64>,
    },
    Delete {
        workspace: Uuid,
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum Memories {
    /// Scoped memories the workspace can see
    List {
        workspace: Uuid,
        /// LOCAL | TEAM | GLOBAL
        #[arg(long)]
        scope: Option<String>,
        /// Search text
        #[arg(long, short = 'q')]
        query: Option<String>,
        #[arg(long)]
        namespace: Option<String>,
    },
    Add {
        workspace: Uuid,
        content: String,
        /// LOCAL | TEAM | GLOBAL
        #[arg(long, default_value = "LOCAL")]
        scope: String,
        #[arg(long)]
        namespace: Option<String>,
    },
    Delete {
        workspace: Uuid,
        memory: Uuid,
    },
}

#[derive(Subcommand, Debug)]
pub enum GlobalSecret {
    /// Secrets every workspace inherits (values are never printed)
    List,
    Set {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum Delegation {
    /// A workspace's delegations
    List { workspace: Uuid },
    /// Ask `target` to do `task` on `workspace`'s behalf (async)
    Create {
        workspace: Uuid,
        target: Uuid,
        task: String,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

pub async fn registry(conn: &Connection, c: &Client, cmd: Registry) -> Result<()> {
    let v = match cmd {
        Registry::Discover { target, caller } => {
            let r = c
                .raw(Method::GET, format!("/registry/discover/{target}"))
                .header("x-workspace-id", caller.to_string())
                .send()
                .await?
                .error_for_status()?;
            r.json()?
        }
        Registry::Peers { workspace } => {
            let r = c
                .raw(Method::GET, format!("/registry/{workspace}/peers"))
                .header("x-workspace-id", workspace.to_string())
                .send()
                .await?
                .error_for_status()?;
            r.json()?
        }
        Registry::CheckAccess { caller, target } => {
            let body = json!({ "caller_id": caller, "target_id": target });
            call(c, Method::POST, "/registry/check-access", Some(body)).await?
        }
    };
    print(conn, &v, &["id", "name", "role", "status", "url"]);
    Ok(())
}

/// A JSON argument, or stdin's when it is `-`.
fn json_arg(arg: &str) -> Result<Value> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        arg.to_string()
    };
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("not JSON: {e}"))
}

pub async fn card(conn: &Connection, c: &Client, cmd: Card) -> Result<()> {
    match cmd {
        Card::Get { workspace } => {
            let w = call(c, Method::GET, &format!("/workspaces/{workspace}"), None).await?;
            let card = w["agent_card"].clone();
            let format = if conn.output == Format::Table {
                Format::Json
            } else {
                conn.output
            };
            println!("{}", super::render::render(&card, format, &[]));
        }
        Card::Set { workspace, card } => {
            let body = json!({ "workspace_id": workspace, "agent_card": json_arg(&card)? });
            let v = call(c, Method::POST, "/registry/update-card", Some(body)).await?;
            print(conn, &v, &[]);
        }
    }
    Ok(())
}

pub async fn config(conn: &Connection, c: &Client, cmd: ConfigCmd) -> Result<()> {
    match cmd {
        ConfigCmd::Get { workspace } => {
            let v = call(
                c,
                Method::GET,
                &format!("/workspaces/{workspace}/config"),
                None,
            )
            .await?;
            print(conn, &v["data"], &[]);
        }
        ConfigCmd::Set { workspace, json } => {
            let path = format!("/workspaces/{workspace}/config");
            let v = call(c, Method::PATCH, &path, Some(json_arg(&json)?)).await?;
            print(conn, &v, &[]);
        }
    }
    Ok(())
}

pub async fn memory(conn: &Connection, c: &Client, cmd: Memory) -> Result<()> {
    let base = |w: Uuid| format!("/workspaces/{w}/memory");
    match cmd {
        Memory::List { workspace } => {
            let v = call(c, Method::GET, &base(workspace), None).await?;
            print(conn, &v, &["key", "value", "expires_at", "updated_at"]);
        }
        Memory::Get { workspace, key } => {
            let path = format!("{}/{}", base(workspace), super::segment(&key));
            print(conn, &call(c, Method::GET, &path, None).await?, &[]);
        }
        Memory::Set {
            workspace,
            key,
            value,
            ttl,
        } => {
            let value = serde_json::from_str(&value).unwrap_or(Value::String(value));
            let mut body = json!({ "key": key, "value": value });
            if let Some(ttl) = ttl {
                body["ttl_seconds"] = json!(ttl);
            }
            print(
                conn,
                &call(c, Method::POST, &base(workspace), Some(body)).await?,
                &[],
            );
        }
        Memory::Delete { workspace, key } => {
            let path = format!("{}/{}", base(workspace), super::segment(&key));
            print(conn, &call(c, Method::DELETE, &path, None).await?, &[]);
        }
    }
    Ok(())
}

pub async fn memories(conn: &Connection, c: &Client, cmd: Memories) -> Result<()> {
    let base = |w: Uuid| format!("/workspaces/{w}/memories");
    match cmd {
        Memories::List {
            workspace,
            scope,
            query: q,
            namespace,
        } => {
            let path = query(
                &base(workspace),
                &[("scope", scope), ("q", q), ("namespace", namespace)],
            );
            let v = call(c, Method::GET, &path, None).await?;
            print(
                conn,
                &v,
                &["id", "scope", "namespace", "content", "created_at"],
            );
        }
        Memories::Add {
            workspace,
            content,
            scope,
            namespace,
        } => {
            let mut body = json!({ "content": content, "scope": scope.to_uppercase() });
            if let Some(ns) = namespace {
                body["namespace"] = json!(ns);
            }
            print(
                conn,
                &call(c, Method::POST, &base(workspace), Some(body)).await?,
                &[],
            );
        }
        Memories::Delete { workspace, memory } => {
            let path = format!("{}/{memory}", base(workspace));
            print(conn, &call(c, Method::DELETE, &path, None).await?, &[]);
        }
    }
    Ok(())
}

pub async fn global_secret(conn: &Connection, c: &Client, cmd: GlobalSecret) -> Result<()> {
    match cmd {
        GlobalSecret::List => {
            let v = call(c, Method::GET, "/settings/secrets", None).await?;
            print(conn, &v, &["key", "scope", "updated_at"]);
        }
        GlobalSecret::Set { key, value } => {
            let body = json!({ "key": key, "value": value });
            print(
                conn,
                &call(c, Method::PUT, "/settings/secrets", Some(body)).await?,
                &[],
            );
        }
        GlobalSecret::Delete { key } => {
            let path = format!("/settings/secrets/{}", super::segment(&key));
            print(conn, &call(c, Method::DELETE, &path, None).await?, &[]);
        }
    }
    Ok(())
}

pub async fn delegation(conn: &Connection, c: &Client, cmd: Delegation) -> Result<()> {
    match cmd {
        Delegation::List { workspace } => {
            let path = format!("/workspaces/{workspace}/delegations");
            let v = call(c, Method::GET, &path, None).await?;
            print(
                conn,
                &v,
                &["delegation_id", "type", "status", "target_id", "created_at"],
            );
        }
        Delegation::Create {
            workspace,
            target,
            task,
            idempotency_key,
        } => {
            let v = c
                .delegate(workspace, target, &task, idempotency_key.as_deref())
                .await?;
            print(conn, &v, &[]);
        }
    }
    Ok(())
}

/// `molecule logs`: the provisioner's view of the workspace's output.
pub async fn logs(c: &Client, workspace: Uuid, tail: usize, follow: bool) -> Result<()> {
    let path = format!("/workspaces/{workspace}/logs?tail={tail}&follow={follow}");
    let mut r = c.raw(Method::GET, path).send_streaming().await?;
    if r.status >= 400 {
        let whole = r.collect().await?;
        return Err(ClientError::from_http(whole.status, &whole.body).into());
    }
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = r.chunk().await? {
        out.write_all(&chunk)?;
        out.flush()?;
    }
    Ok(())
}

/// `molecule chat`: one message (`-m`) or a conversation on the terminal,
/// each answer printed as it streams in.
pub async fn chat(
    conn: &Connection,
    c: &Client,
    workspace: Uuid,
    message: Option<String>,
) -> Result<()> {
    let mut conv = Conversation::default();
    if let Some(text) = message {
        return turn(conn, c, workspace, &text, &mut conv).await;
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        let w = call(c, Method::GET, &format!("/workspaces/{workspace}"), None).await?;
        eprintln!(
            "chat with {} ({}) through the platform; an empty line or Ctrl-D ends it",
            w["name"].as_str().unwrap_or("?"),
            w["status"].as_str().unwrap_or("?")
        );
    }
    let stdin = std::io::stdin();
    loop {
        if interactive {
            eprint!("you> ");
            std::io::stderr().flush()?;
        }
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            return Ok(());
        }
        if let Err(e) = turn(conn, c, workspace, line.trim(), &mut conv).await {
            if !interactive {
                return Err(e);
            }
            eprintln!("error: {}", super::one_line(&e));
        }
    }
}

async fn turn(
    conn: &Connection,
    c: &Client,
    workspace: Uuid,
    text: &str,
    conv: &mut Conversation,
) -> Result<()> {
    let json = conn.output != Format::Table;
    let mut answer = String::new();
    let mut asked = None;
    let state = chat::send(c, workspace, text, conv, |p| match p {
        Piece::Text(t) => {
            if !json {
                print!("{t}");
                let _ = std::io::stdout().flush();
            }
            answer.push_str(&t);
        }
        Piece::Question(q) => {
            if !json {
                print!("{q}");
            }
            asked = Some(q);
        }
        Piece::State(_) => {}
    })
    .await?;
    if json {
        let v = json!({
            "state": state,
            "answer": answer,
            "question": asked,
            "context_id": conv.context_id,
            "task_id": conv.task_id,
        });
        super::print(conn, &v, &[]);
    } else {
        println!();
        if state != "completed" && state != "input-required" {
            bail!("the task ended {state}");
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// The agent card
    #[command(subcommand)]
    Card(Card),
    /// The workspace's runtime config
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The key/value memory
    #[command(subcommand)]
    Memory(Memory),
    /// Scoped memories (LOCAL, TEAM, GLOBAL)
    #[command(subcommand)]
    Memories(Memories),
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

pub async fn agent_cmd(conn: &Connection, c: &Client, cmd: AgentCmd) -> Result<()> {
    let ws = |id: Uuid| format!("/workspaces/{id}");
    match cmd {
        AgentCmd::Card(cmd) => card(conn, c, cmd).await?,
        AgentCmd::Config(cmd) => config(conn, c, cmd).await?,
        AgentCmd::Memory(cmd) => memory(conn, c, cmd).await?,
        AgentCmd::Memories(cmd) => memories(conn, c, cmd).await?,
        AgentCmd::Session {
            cmd:
                SessionCmd::Search {
                    workspace,
                    query,
                    limit,
                },
        } => super::content::session_search(conn, c, workspace, query, limit).await?,
        AgentCmd::Assign { workspace, model } => {
            let path = format!("{}/agent", ws(workspace));
            print(
                conn,
                &call(c, Method::POST, &path, Some(json!({ "model": model }))).await?,
                &[],
            );
        }
        AgentCmd::Replace { workspace, model } => {
            let path = format!("{}/agent", ws(workspace));
            print(
                conn,
                &call(c, Method::PATCH, &path, Some(json!({ "model": model }))).await?,
                &[],
            );
        }
        AgentCmd::Remove { workspace } => {
            let path = format!("{}/agent", ws(workspace));
            print(conn, &call(c, Method::DELETE, &path, None).await?, &[]);
        }
        AgentCmd::Move { workspace, target } => {
            let path = format!("{}/agent/move", ws(workspace));
            let body = json!({ "target_workspace_id": target });
            print(conn, &call(c, Method::POST, &path, Some(body)).await?, &[]);
        }
        AgentCmd::Chat { workspace, message } => chat(conn, c, workspace, message).await?,
    }
    Ok(())
}
