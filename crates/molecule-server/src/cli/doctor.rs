//! `molecule doctor`: what stands between this machine and a working
//! platform, each check PASS, WARN or FAIL with the fix; exit 1 on any FAIL.
//! Remote checks ask the platform (`/health`, `/readyz` — which covers its
//! database —, `/admin/liveness`, its clock); local ones look at this
//! machine (the Docker engine and the agent image, the templates and plugin
//! directories, the admin token's strength when one is set here).

use anyhow::Result;
use molecule_client::{Client, Method};
use serde_json::{Value, json};

use super::Connection;
use super::render::{Format, render};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Pass,
    Warn,
    Fail,
}

struct Check {
    name: &'static str,
    level: Level,
    detail: String,
    fix: String,
}

fn check(
    name: &'static str,
    level: Level,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        name,
        level,
        detail: detail.into(),
        fix: fix.into(),
    }
}

/// Seconds of clock difference that are worth a warning.
const SKEW_WARN_SECS: i64 = 5;

async fn remote(c: &Client, url: &str, out: &mut Vec<Check>) {
    use Level::*;
    let health = match c.request(Method::GET, "/health", None).await {
        Ok(r) if r.status == 200 => r,
        Ok(r) => {
            out.push(check(
                "platform",
                Fail,
                format!("{url} answered HTTP {} to /health", r.status),
                "is this a molecule platform? check --url",
            ));
            return;
        }
        Err(e) => {
            out.push(check(
                "platform",
                Fail,
                format!("cannot reach {url}: {e}"),
                "start it with `molecule serve`, or point --url / MOLECULE_URL at it",
            ));
            return;
        }
    };
    out.push(check("platform", Pass, format!("{url} answers"), ""));
    if let Some(date) = health
        .header("date")
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
    {
        let skew = (chrono::Utc::now() - date.with_timezone(&chrono::Utc)).num_seconds();
        if skew.abs() > SKEW_WARN_SECS {
            out.push(check(
                "clock",
                Warn,
                format!("this machine's clock is {skew} s off the platform's"),
                "synchronise both clocks (NTP); schedules and TTLs follow the platform's",
            ));
        } else {
            out.push(check(
                "clock",
                Pass,
                format!("within {SKEW_WARN_SECS} s of the platform's"),
                "",
            ));
        }
    }
    match c.request(Method::GET, "/readyz", None).await {
        Ok(r) if r.status == 200 => out.push(check(
            "database and tasks",
            Pass,
            "the platform is ready (database answers, no background task stale)",
            "",
        )),
        Ok(r) => {
            let body = r.json().unwrap_or(Value::Null);
            out.push(check(
                "database and tasks",
                Fail,
                format!("not ready: {body}"),
                "see the platform's log; `molecule api GET /admin/liveness` names stale tasks",
            ));
        }
        Err(e) => out.push(check(
            "database and tasks",
            Fail,
            e.to_string(),
            "see the platform's log",
        )),
    }
    match c.request(Method::GET, "/admin/liveness", None).await {
        Ok(r) if r.status == 200 => {
            let body = r.json().unwrap_or(Value::Null);
            let stale: Vec<String> = body["subsystems"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(_, v)| v["stale"] == true)
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            if stale.is_empty() {
                out.push(check("background tasks", Pass, "every task ticks", ""));
            } else {
                out.push(check(
                    "background tasks",
                    Fail,
                    format!("stale: {}", stale.join(", ")),
                    "see the platform's log for their last error",
                ));
            }
        }
        Ok(r) if r.status == 401 || r.status == 403 => out.push(check(
            "background tasks",
            Warn,
            "not shown without the admin token",
            "pass --token with the admin token",
        )),
        Ok(r) => out.push(check(
            "background tasks",
            Warn,
            format!("HTTP {}", r.status),
            "",
        )),
        Err(e) => out.push(check("background tasks", Warn, e.to_string(), "")),
    }
}

fn local(out: &mut Vec<Check>) {
    use Level::*;
    let docker = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match docker {
        Ok(o) if o.status.success() => {
            let version = String::from_utf8_lossy(&o.stdout).trim().to_string();
            out.push(check("docker", Pass, format!("engine {version}"), ""));
            let image = format!("molecule/agent:{}", env!("CARGO_PKG_VERSION"));
            let present = std::process::Command::new("docker")
                .args(["image", "inspect", &image])
                .output()
                .is_ok_and(|o| o.status.success());
            if present {
                out.push(check("agent image", Pass, image, ""));
            } else {
                out.push(check(
                    "agent image",
                    Warn,
                    format!("{image} is not built"),
                    "build it with `cargo xtask image` (images are never pulled)",
                ));
            }
        }
        _ => out.push(check(
            "docker",
            Warn,
            "no Docker engine answers on this machine",
            "workspaces then run as local processes; start dockerd for containers",
        )),
    }
    let data = std::env::var("MOLECULE_DATA_DIR").unwrap_or_else(|_| "./molecule-data".into());
    let templates = std::env::var("MOLECULE_TEMPLATES_DIR")
        .or_else(|_| std::env::var("CONFIGS_DIR"))
        .unwrap_or_else(|_| format!("{data}/templates"));
    let plugins = std::env::var("MOLECULE_PLUGINS_DIR").unwrap_or_else(|_| {
        std::path::Path::new(&templates).parent().map_or_else(
            || format!("{data}/plugins"),
            |p| p.join("plugins").display().to_string(),
        )
    });
    for (name, dir) in [
        ("templates directory", templates),
        ("plugins directory", plugins),
    ] {
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                let n = entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .count();
                out.push(check(name, Pass, format!("{dir} ({n} entries)"), ""));
            }
            Err(_) => out.push(check(
                name,
                Warn,
                format!("{dir} is not there"),
                "create it, or set the variable that names it (a platform on this machine uses it)",
            )),
        }
    }
    if let Ok(token) = std::env::var("MOLECULE_ADMIN_TOKEN") {
        match molecule_server::config::security::check_admin_token(&token) {
            Ok(()) => out.push(check(
                "admin token",
                Pass,
                "strong enough for production",
                "",
            )),
            Err(problem) => out.push(check(
                "admin token",
                Fail,
                problem,
                "replace MOLECULE_ADMIN_TOKEN with random text (see the detail)",
            )),
        }
    }
}

/// Runs every check; exit code 1 on any FAIL.
pub async fn doctor(conn: &Connection, c: &Client, url: &str) -> Result<bool> {
    let mut checks = Vec::new();
    remote(c, url, &mut checks).await;
    local(&mut checks);
    let rows: Vec<Value> = checks
        .iter()
        .map(|c| {
            json!({
                "check": c.name,
                "status": match c.level { Level::Pass => "PASS", Level::Warn => "WARN", Level::Fail => "FAIL" },
                "detail": c.detail,
                "fix": c.fix,
            })
        })
        .collect();
    let columns: &[&str] = if conn.output == Format::Table {
        &["status", "check", "detail", "fix"]
    } else {
        &[]
    };
    println!("{}", render(&Value::Array(rows), conn.output, columns));
    Ok(!checks.iter().any(|c| c.level == Level::Fail))
}
