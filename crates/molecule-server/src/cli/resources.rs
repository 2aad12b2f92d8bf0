//! A workspace's resources: secrets, schedules, approvals and activity.

use anyhow::{Result, bail};
use clap::Subcommand;
use molecule_client::{Client, Method};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Connection, agent, call, print, segment};

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

fn ws(id: Uuid) -> String {
    format!("/workspaces/{id}")
}

pub async fn secret(conn: &Connection, c: &Client, cmd: Secret) -> Result<()> {
    match cmd {
        Secret::List { workspace } => {
            let v = call(c, Method::GET, &format!("{}/secrets", ws(workspace)), None).await?;
            print(conn, &v, &["key", "scope", "updated_at"]);
        }
        Secret::Set {
            workspace,
            key,
            value,
        } => {
            let body = json!({ "key": key, "value": value });
            let v = call(
                c,
                Method::POST,
                &format!("{}/secrets", ws(workspace)),
                Some(body),
            )
            .await?;
            print(conn, &v, &[]);
        }
        Secret::Delete { workspace, key } => {
            let path = format!("{}/secrets/{}", ws(workspace), segment(&key));
            print(conn, &call(c, Method::DELETE, &path, None).await?, &[]);
        }
        Secret::Values { workspace } => {
            let v = call(
                c,
                Method::GET,
                &format!("{}/secrets/values", ws(workspace)),
                None,
            )
            .await?;
            print(conn, &v, &[]);
        }
        Secret::ListGlobal => agent::global_secret(conn, c, agent::GlobalSecret::List).await?,
        Secret::SetGlobal { key, value } => {
            agent::global_secret(conn, c, agent::GlobalSecret::Set { key, value }).await?
        }
        Secret::DeleteGlobal { key } => {
            agent::global_secret(conn, c, agent::GlobalSecret::Delete { key }).await?
        }
    }
    Ok(())
}

pub async fn schedule(conn: &Connection, c: &Client, cmd: Schedule) -> Result<()> {
    match cmd {
        Schedule::List { workspace } => {
            let v = call(
                c,
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
            let body =
                json!({ "name": name, "cron_expr": cron, "prompt": prompt, "timezone": timezone });
            let v = call(
                c,
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
                bail!("nothing to update: give --cron, --prompt, --name, --timezone or --enabled");
            }
            let path = format!("{}/schedules/{schedule}", ws(workspace));
            print(conn, &call(c, Method::PATCH, &path, Some(body)).await?, &[]);
        }
        Schedule::Run {
            workspace,
            schedule,
        } => {
            let path = format!("{}/schedules/{schedule}/run", ws(workspace));
            print(conn, &call(c, Method::POST, &path, None).await?, &[]);
        }
        Schedule::History {
            workspace,
            schedule,
        } => {
            let path = format!("{}/schedules/{schedule}/history", ws(workspace));
            let v = call(c, Method::GET, &path, None).await?;
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
            print(conn, &call(c, Method::DELETE, &path, None).await?, &[]);
        }
    }
    Ok(())
}

pub async fn approvals(conn: &Connection, c: &Client, cmd: Approvals) -> Result<()> {
    match cmd {
        Approvals::Pending => {
            let v = call(c, Method::GET, "/approvals/pending", None).await?;
            print(
                conn,
                &v,
                &["id", "workspace_name", "action", "reason", "created_at"],
            );
        }
        Approvals::List { workspace } => {
            let v = call(
                c,
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
            print(conn, &call(c, Method::POST, &path, Some(body)).await?, &[]);
        }
    }
    Ok(())
}

/// `molecule activity`.
pub async fn activity(
    conn: &Connection,
    c: &Client,
    workspace: Uuid,
    kind: Option<String>,
) -> Result<()> {
    let mut path = format!("{}/activity", ws(workspace));
    if let Some(k) = kind {
        path = format!("{path}?type={k}");
    }
    let v = call(c, Method::GET, &path, None).await?;
    print(
        conn,
        &v,
        &["created_at", "activity_type", "method", "status", "summary"],
    );
    Ok(())
}
