//! Named connections (`molecule context …`): a JSON file at
//! `$MOLECULE_CONFIG`, else `$XDG_CONFIG_HOME/molecule/config.json`, else
//! `~/.config/molecule/config.json`, written with mode 0600 because it holds
//! tokens.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use super::{Connection, print};

/// One named connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Contexts {
    #[serde(default)]
    pub current: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Entry>,
}

/// Where the file lives.
pub fn path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("MOLECULE_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".config"),
    };
    Ok(base.join("molecule").join("config.json"))
}

impl Contexts {
    /// The file, or an empty set when there is none.
    pub fn load() -> Result<Contexts> {
        let p = path()?;
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a molecule config file", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contexts::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    /// Writes the file, readable by its owner only.
    pub fn save(&self) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let p = path()?;
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp = p.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &p).with_context(|| format!("cannot write {}", p.display()))?;
        Ok(())
    }

    /// The entry named `name`, or the current one.
    pub fn pick(&self, name: Option<&str>) -> Result<Option<&Entry>> {
        match name.or(self.current.as_deref()) {
            None => Ok(None),
            Some(n) => match self.contexts.get(n) {
                Some(e) => Ok(Some(e)),
                None => bail!("no context named {n:?} (see `molecule context list`)"),
            },
        }
    }
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

/// `molecule context …`.
pub fn command(conn: &Connection, cmd: ContextCmd) -> Result<()> {
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
            println!("context {name} saved and in use ({})", path()?.display());
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
