//! The content commands: templates, org import, bundles, a workspace's
//! files and plugins, traces, transcript and session search. Imports that
//! start workspaces show their progress (`progress.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use molecule_client::{Client, Method};
use serde_json::{Value, json};
use uuid::Uuid;

use super::progress::{self, Wait};
use super::{Connection, call, print, query, segment};

#[derive(Subcommand, Debug)]
pub enum Templates {
    /// Workspace templates on the platform
    List,
    /// Upload a directory as a new template
    Import {
        dir: PathBuf,
        /// Template name (default: the directory's name)
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum Org {
    /// Org templates on the platform
    Templates,
    /// Create an org from a template directory on the platform, or from a
    /// local org.yaml (`--file`)
    Import {
        /// A directory under the platform's org templates
        dir: Option<String>,
        /// A local org file (YAML or JSON) sent as the template
        #[arg(long, conflicts_with = "dir")]
        file: Option<PathBuf>,
        #[command(flatten)]
        wait: Wait,
    },
}

#[derive(Subcommand, Debug)]
pub enum Bundle {
    /// A workspace (and its children) as one JSON bundle
    Export {
        workspace: Uuid,
        /// Write here instead of stdout
        #[arg(long, short = 'f')]
        file: Option<PathBuf>,
    },
    /// Create workspaces from a bundle file (`-` reads stdin)
    Import {
        file: String,
        #[command(flatten)]
        wait: Wait,
    },
}

#[derive(Subcommand, Debug)]
pub enum Files {
    List {
        workspace: Uuid,
        /// Directory under the root
        #[arg(long, default_value = "")]
        path: String,
        /// /configs (default), /workspace, /home or /plugins
        #[arg(long)]
        root: Option<String>,
        #[arg(long)]
        depth: Option<u8>,
    },
    /// Print a file's content
    Get {
        workspace: Uuid,
        path: String,
        #[arg(long)]
        root: Option<String>,
    },
    /// Write a file under /configs from a local file (`-` reads stdin)
    Put {
        workspace: Uuid,
        path: String,
        from: String,
    },
    Delete {
        workspace: Uuid,
        path: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum Plugins {
    /// Plugins the platform can install
    Registry {
        #[arg(long)]
        runtime: Option<String>,
    },
    /// Install source schemes the platform accepts
    Sources,
    /// Plugins installed in a workspace
    List { workspace: Uuid },
    /// Registry plugins that fit a workspace's runtime
    Available { workspace: Uuid },
    /// Install (`local://name`, `github://owner/repo`, `https://…#sha256=…`);
    /// the workspace restarts
    Install { workspace: Uuid, source: String },
    /// Remove; the workspace restarts
    Uninstall { workspace: Uuid, name: String },
}

pub async fn templates(conn: &Connection, c: &Client, cmd: Templates) -> Result<()> {
    match cmd {
        Templates::List => {
            let v = call(c, Method::GET, "/templates", None).await?;
            print(
                conn,
                &v,
                &["id", "name", "tier", "model", "skill_count", "description"],
            );
        }
        Templates::Import { dir, name } => {
            let name = match name {
                Some(n) => n,
                None => dir
                    .canonicalize()
                    .ok()
                    .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .context("give the template a --name")?,
            };
            let files = read_tree(&dir)?;
            eprintln!("uploading {} files from {}", files.len(), dir.display());
            let body = json!({ "name": name, "files": files });
            print(
                conn,
                &call(c, Method::POST, "/templates/import", Some(body)).await?,
                &[],
            );
        }
    }
    Ok(())
}

/// Every file under `dir` as `{relative path: text}`.
fn read_tree(dir: &Path) -> Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?;
        for entry in entries {
            let p = entry?.path();
            let meta = std::fs::symlink_metadata(&p)?;
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                let rel = p.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("{} is not a UTF-8 text file", p.display()))?;
                out.insert(rel, Value::String(text));
            }
        }
    }
    if out.is_empty() {
        bail!("{} holds no files", dir.display());
    }
    Ok(out)
}

/// Reads `path` (`-`: stdin).
fn read_input(path: &str) -> Result<String> {
    if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))
}

pub async fn org(conn: &Connection, c: &Client, cmd: Org) -> Result<()> {
    match cmd {
        Org::Templates => {
            let v = call(c, Method::GET, "/org/templates", None).await?;
            print(conn, &v, &["dir", "name", "workspaces", "description"]);
        }
        Org::Import { dir, file, wait } => {
            let body = match (dir, file) {
                (Some(dir), None) => json!({ "dir": dir }),
                (None, Some(file)) => {
                    let text = read_input(&file.to_string_lossy())?;
                    let template: Value = serde_json::from_str(&text).or_else(|_| {
                        serde_saphyr::from_str::<Value>(&text).map_err(|e| {
                            anyhow::anyhow!("{} is neither JSON nor YAML: {e}", file.display())
                        })
                    })?;
                    json!({ "template": template })
                }
                _ => bail!("give an org template directory or --file org.yaml"),
            };
            let feed = progress::feed_for(&wait, c).await;
            eprintln!("importing the org…");
            let v = call(c, Method::POST, "/org/import", Some(body)).await?;
            if conn.output == super::render::Format::Table {
                print(conn, &v["workspaces"], &["id", "name", "tier", "parent_id"]);
            } else {
                print(conn, &v, &[]);
            }
            let ids: Vec<Uuid> = v["workspaces"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|w| w["id"].as_str()?.parse().ok())
                .collect();
            if let Some(e) = v["error"].as_str() {
                bail!("the import stopped after {} workspaces: {e}", ids.len());
            }
            if let Some(feed) = feed {
                progress::progress(c, feed, &ids, wait.timeout).await?;
            }
        }
    }
    Ok(())
}

pub async fn bundle(conn: &Connection, c: &Client, cmd: Bundle) -> Result<()> {
    match cmd {
        Bundle::Export { workspace, file } => {
            let v = call(
                c,
                Method::GET,
                &format!("/bundles/export/{workspace}"),
                None,
            )
            .await?;
            let text = serde_json::to_string_pretty(&v)?;
            match file {
                Some(f) => {
                    std::fs::write(&f, text)
                        .with_context(|| format!("cannot write {}", f.display()))?;
                    eprintln!(
                        "bundle of {} written to {}",
                        v["name"].as_str().unwrap_or("?"),
                        f.display()
                    );
                }
                None => println!("{text}"),
            }
        }
        Bundle::Import { file, wait } => {
            let bundle: Value =
                serde_json::from_str(&read_input(&file)?).context("the bundle is not JSON")?;
            let feed = progress::feed_for(&wait, c).await;
            eprintln!(
                "importing bundle {}…",
                bundle["name"].as_str().unwrap_or("?")
            );
            let v = call(c, Method::POST, "/bundles/import", Some(bundle)).await?;
            print(conn, &v, &[]);
            let mut ids = Vec::new();
            collect_ids(&v, &mut ids);
            if v["status"] == "failed" {
                bail!(
                    "the import failed: {}",
                    v["error"].as_str().unwrap_or("unknown error")
                );
            }
            if let Some(feed) = feed {
                progress::progress(c, feed, &ids, wait.timeout).await?;
            }
        }
    }
    Ok(())
}

/// The workspace ids of a bundle import's answer and its `children`.
fn collect_ids(v: &Value, out: &mut Vec<Uuid>) {
    if let Some(id) = v["workspace_id"].as_str().and_then(|s| s.parse().ok()) {
        out.push(id);
    }
    for child in v["children"].as_array().into_iter().flatten() {
        collect_ids(child, out);
    }
}

pub async fn files(conn: &Connection, c: &Client, cmd: Files) -> Result<()> {
    match cmd {
        Files::List {
            workspace,
            path,
            root,
            depth,
        } => {
            let p = query(
                &format!("/workspaces/{workspace}/files"),
                &[
                    ("path", Some(path).filter(|p| !p.is_empty())),
                    ("root", root),
                    ("depth", depth.map(|d| d.to_string())),
                ],
            );
            let v = call(c, Method::GET, &p, None).await?;
            print(conn, &v, &["path", "size", "dir"]);
        }
        Files::Get {
            workspace,
            path,
            root,
        } => {
            let p = query(
                &format!("/workspaces/{workspace}/files/{}", path_segments(&path)),
                &[("root", root)],
            );
            let v = call(c, Method::GET, &p, None).await?;
            if conn.output == super::render::Format::Table {
                print!("{}", v["content"].as_str().unwrap_or_default());
                std::io::stdout().flush()?;
            } else {
                print(conn, &v, &[]);
            }
        }
        Files::Put {
            workspace,
            path,
            from,
        } => {
            let content = read_input(&from)?;
            let p = format!("/workspaces/{workspace}/files/{}", path_segments(&path));
            print(
                conn,
                &call(c, Method::PUT, &p, Some(json!({ "content": content }))).await?,
                &[],
            );
        }
        Files::Delete { workspace, path } => {
            let p = format!("/workspaces/{workspace}/files/{}", path_segments(&path));
            print(conn, &call(c, Method::DELETE, &p, None).await?, &[]);
        }
    }
    Ok(())
}

/// A relative path with each segment percent-encoded, slashes kept.
fn path_segments(path: &str) -> String {
    path.trim_start_matches('/')
        .split('/')
        .map(segment)
        .collect::<Vec<_>>()
        .join("/")
}

pub async fn plugins(conn: &Connection, c: &Client, cmd: Plugins) -> Result<()> {
    let cols: &[&str] = &["name", "version", "description", "runtimes"];
    match cmd {
        Plugins::Registry { runtime } => {
            let v = call(
                c,
                Method::GET,
                &query("/plugins", &[("runtime", runtime)]),
                None,
            )
            .await?;
            print(conn, &v, cols);
        }
        Plugins::Sources => print(
            conn,
            &call(c, Method::GET, "/plugins/sources", None).await?,
            &[],
        ),
        Plugins::List { workspace } => {
            let v = call(
                c,
                Method::GET,
                &format!("/workspaces/{workspace}/plugins"),
                None,
            )
            .await?;
            print(
                conn,
                &v,
                &["name", "version", "supported_on_runtime", "description"],
            );
        }
        Plugins::Available { workspace } => {
            let v = call(
                c,
                Method::GET,
                &format!("/workspaces/{workspace}/plugins/available"),
                None,
            )
            .await?;
            print(conn, &v, cols);
        }
        Plugins::Install { workspace, source } => {
            eprintln!("installing {source} (the workspace restarts)…");
            let p = format!("/workspaces/{workspace}/plugins");
            print(
                conn,
                &call(c, Method::POST, &p, Some(json!({ "source": source }))).await?,
                &[],
            );
        }
        Plugins::Uninstall { workspace, name } => {
            let p = format!("/workspaces/{workspace}/plugins/{}", segment(&name));
            print(conn, &call(c, Method::DELETE, &p, None).await?, &[]);
        }
    }
    Ok(())
}

/// `molecule traces`, `molecule transcript`, `molecule session-search`.
pub async fn traces(conn: &Connection, c: &Client, workspace: Uuid) -> Result<()> {
    let v = call(
        c,
        Method::GET,
        &format!("/workspaces/{workspace}/traces"),
        None,
    )
    .await?;
    print(conn, &v, &["id", "name", "timestamp", "latency"]);
    Ok(())
}

pub async fn transcript(
    conn: &Connection,
    c: &Client,
    workspace: Uuid,
    since: Option<u64>,
    limit: Option<u64>,
) -> Result<()> {
    let p = query(
        &format!("/workspaces/{workspace}/transcript"),
        &[
            ("since", since.map(|s| s.to_string())),
            ("limit", limit.map(|l| l.to_string())),
        ],
    );
    let v = call(c, Method::GET, &p, None).await?;
    let rows = if v["entries"].is_array() {
        &v["entries"]
    } else {
        &v
    };
    print(conn, rows, &[]);
    Ok(())
}

pub async fn session_search(
    conn: &Connection,
    c: &Client,
    workspace: Uuid,
    q: Option<String>,
    limit: Option<u32>,
) -> Result<()> {
    let p = query(
        &format!("/workspaces/{workspace}/session-search"),
        &[("q", q), ("limit", limit.map(|l| l.to_string()))],
    );
    let v = call(c, Method::GET, &p, None).await?;
    print(
        conn,
        &v,
        &["kind", "created_at", "label", "method", "status", "content"],
    );
    Ok(())
}
