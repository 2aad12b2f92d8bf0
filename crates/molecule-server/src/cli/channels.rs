//! `molecule channel …`: a workspace's chat channels (Telegram, Slack).

use anyhow::{Result, bail};
use clap::Subcommand;
use molecule_client::{Client, Method};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Connection, call, print};

#[derive(Subcommand, Debug)]
pub enum Channel {
    /// The chat platforms the platform supports
    Adapters,
    /// A workspace's channels (tokens masked)
    List {
        workspace: Uuid,
    },
    /// Connect a chat: `molecule channel add WS telegram --set bot_token=… --set chat_id=-100…`
    Add {
        workspace: Uuid,
        /// telegram | slack
        channel_type: String,
        /// A config field, KEY=VALUE (repeat)
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Only these users (ids or names) may talk to the agent (repeat)
        #[arg(long = "allow")]
        allow: Vec<String>,
        /// Create it disabled
        #[arg(long)]
        disabled: bool,
    },
    /// Change a channel's config, allowed users or state
    Update {
        workspace: Uuid,
        channel: Uuid,
        /// Replaces the whole config: give every field (repeat)
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long = "allow")]
        allow: Vec<String>,
        #[arg(long)]
        enabled: Option<bool>,
    },
    Remove {
        workspace: Uuid,
        channel: Uuid,
    },
    /// Post a message to every chat of the channel
    Send {
        workspace: Uuid,
        channel: Uuid,
        text: String,
    },
    /// Post a test message
    Test {
        workspace: Uuid,
        channel: Uuid,
    },
    /// The chats a Telegram bot is in (admin)
    Discover {
        workspace: Uuid,
        #[arg(long)]
        bot_token: String,
    },
}

/// `KEY=VALUE` pairs as a JSON object.
fn config(pairs: &[String]) -> Result<Value> {
    let mut out = serde_json::Map::new();
    for p in pairs {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--set takes KEY=VALUE, got {p:?}");
        };
        out.insert(k.trim().to_string(), Value::String(v.to_string()));
    }
    Ok(Value::Object(out))
}

pub async fn channel(conn: &Connection, c: &Client, cmd: Channel) -> Result<()> {
    let base = |ws: Uuid| format!("/workspaces/{ws}/channels");
    match cmd {
        Channel::Adapters => {
            let v = call(c, Method::GET, "/channels/adapters", None).await?;
            print(conn, &v, &["type", "display_name"]);
        }
        Channel::List { workspace } => {
            let v = call(c, Method::GET, &base(workspace), None).await?;
            print(
                conn,
                &v,
                &[
                    "id",
                    "channel_type",
                    "enabled",
                    "message_count",
                    "last_message_at",
                    "allowed_users",
                ],
            );
        }
        Channel::Add {
            workspace,
            channel_type,
            set,
            allow,
            disabled,
        } => {
            let body = json!({
                "channel_type": channel_type, "config": config(&set)?,
                "allowed_users": allow, "enabled": !disabled,
            });
            print(
                conn,
                &call(c, Method::POST, &base(workspace), Some(body)).await?,
                &[],
            );
        }
        Channel::Update {
            workspace,
            channel,
            set,
            allow,
            enabled,
        } => {
            let mut body = json!({});
            if !set.is_empty() {
                body["config"] = config(&set)?;
            }
            if !allow.is_empty() {
                body["allowed_users"] = json!(allow);
            }
            if let Some(e) = enabled {
                body["enabled"] = json!(e);
            }
            if body.as_object().is_some_and(serde_json::Map::is_empty) {
                bail!("nothing to update: give --set, --allow or --enabled");
            }
            let path = format!("{}/{channel}", base(workspace));
            print(conn, &call(c, Method::PATCH, &path, Some(body)).await?, &[]);
        }
        Channel::Remove { workspace, channel } => {
            let path = format!("{}/{channel}", base(workspace));
            print(conn, &call(c, Method::DELETE, &path, None).await?, &[]);
        }
        Channel::Send {
            workspace,
            channel,
            text,
        } => {
            let path = format!("{}/{channel}/send", base(workspace));
            let body = json!({ "text": text });
            print(conn, &call(c, Method::POST, &path, Some(body)).await?, &[]);
        }
        Channel::Test { workspace, channel } => {
            let path = format!("{}/{channel}/test", base(workspace));
            print(conn, &call(c, Method::POST, &path, None).await?, &[]);
        }
        Channel::Discover {
            workspace,
            bot_token,
        } => {
            let body = json!({ "channel_type": "telegram", "bot_token": bot_token, "workspace_id": workspace });
            let v = call(c, Method::POST, "/channels/discover", Some(body)).await?;
            if conn.output == super::render::Format::Table {
                println!("bot: @{}", v["bot_username"].as_str().unwrap_or("?"));
                print(conn, &v["chats"], &["chat_id", "name", "type"]);
                if let Some(w) = v["privacy_warning"].as_str() {
                    eprintln!("note: {w}");
                }
            } else {
                print(conn, &v, &[]);
            }
        }
    }
    Ok(())
}
