//! The workspace commands: `molecule ws …` and `molecule events`.

use anyhow::{Result, bail};
use clap::Subcommand;
use molecule_client::{Client, Method};
use serde_json::{Value, json};
use std::io::Write;
use uuid::Uuid;

use super::render::Format;
use super::{Connection, call, confirm, print};

const WS_COLUMNS: &[&str] = &[
    "id",
    "name",
    "role",
    "status",
    "runtime",
    "parent_id",
    "current_task",
];

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

pub async fn ws(conn: &Connection, c: &Client, cmd: Ws) -> Result<()> {
    let ws = |id: Uuid| format!("/workspaces/{id}");
    match cmd {
        Ws::List => {
            let v = call(c, Method::GET, "/workspaces", None).await?;
            print(conn, &v, WS_COLUMNS);
        }
        Ws::Get { id } => print(conn, &call(c, Method::GET, &ws(id), None).await?, &[]),
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
            let v = call(c, Method::POST, "/workspaces", Some(body)).await?;
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
            let v = call(c, Method::PATCH, &ws(id), Some(body)).await?;
            print(conn, &v, &[]);
        }
        Ws::Delete { id, yes } => {
            if !yes {
                let target = call(c, Method::GET, &ws(id), None).await?;
                let name = target["name"].as_str().unwrap_or_default().to_string();
                if !confirm(&format!(
                    "delete workspace {name} ({id}) and every child of it?"
                ))? {
                    bail!("not deleted (answer y, or pass --yes)");
                }
            }
            let v = call(c, Method::DELETE, &format!("{}?confirm=true", ws(id)), None).await?;
            print(conn, &v, &[]);
        }
        Ws::Restart { id } => {
            let v = call(
                c,
                Method::POST,
                &format!("{}/restart", ws(id)),
                Some(json!({})),
            )
            .await?;
            print(conn, &v, &[]);
        }
        Ws::Expand { id } => {
            let v = call(c, Method::POST, &format!("{}/expand", ws(id)), None).await?;
            print(conn, &v, &[]);
        }
        Ws::Collapse { id } => {
            let v = call(c, Method::POST, &format!("{}/collapse", ws(id)), None).await?;
            print(conn, &v, &[]);
        }
        Ws::RotateToken { id } => {
            let path = format!("/admin/workspaces/{id}/token");
            print(conn, &call(c, Method::POST, &path, None).await?, &[]);
        }
        Ws::Pause { id } => {
            let v = call(c, Method::POST, &format!("{}/pause", ws(id)), None).await?;
            print(conn, &v, &[]);
        }
        Ws::Resume { id } => {
            let v = call(c, Method::POST, &format!("{}/resume", ws(id)), None).await?;
            print(conn, &v, &[]);
        }
    }
    Ok(())
}

/// `molecule events`: the recorded ones, or (`--follow`) live.
pub async fn events(
    conn: &Connection,
    c: &Client,
    workspace: Option<Uuid>,
    follow: bool,
) -> Result<()> {
    if follow {
        return follow_events(conn, c, workspace).await;
    }
    let path = match workspace {
        Some(id) => format!("/events/{id}"),
        None => "/events".to_string(),
    };
    let v = call(c, Method::GET, &path, None).await?;
    print(conn, &v, &["created_at", "event_type", "workspace_id"]);
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
