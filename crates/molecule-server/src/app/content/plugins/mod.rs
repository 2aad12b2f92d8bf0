//! Plugins (api-contract §5.15, subsystems §5.5): a registry directory of
//! `<name>/plugin.yaml` plugins, their runtime compatibility, and installing
//! one into a running workspace — staged from its source (`source.rs`),
//! copied into `/configs/plugins/<name>` through the provisioner's files API,
//! then the workspace restarted by the governor as an operator action.
//! Uninstalling removes the plugin, its skills and its `CLAUDE.md` blocks;
//! downloading serves the staged plugin as a `.tar.gz` (`archive.rs`) for
//! agents the platform does not run.

pub mod archive;
pub mod source;

use molecule_provisioner::{FileRoot, ListDepth, Observation};
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;

use crate::app::App;
use crate::app::auth::{AdminAccess, WorkspaceAccess};
use crate::app::content::templates::parse_yaml;
use crate::error::{AppError, AppResult, FetchFailureKind};
use source::{SCHEMES, Source, SourceError, StageError, StageLimits, Staged, valid_name};

/// Most bytes of a `plugin.yaml` or `CLAUDE.md` read from a workspace.
const MAX_TEXT_FILE: u64 = 1 << 20;

/// A plugin as `plugin.yaml` describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub description: String,
    pub author: String,
    pub tags: Vec<String>,
    pub skills: Vec<String>,
    pub runtimes: Vec<String>,
}

impl Manifest {
    /// The manifest of plugin `name` from its `plugin.yaml` text (absent or
    /// unreadable: every field empty).
    pub fn parse(name: &str, yaml: Option<&str>) -> Manifest {
        let doc = yaml.and_then(parse_yaml).unwrap_or(Value::Null);
        let text = |k: &str| match doc.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let list = |k: &str| -> Vec<String> {
            doc.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| match v {
                            Value::String(s) => Some(s.clone()),
                            Value::Object(o) => o
                                .get("id")
                                .or_else(|| o.get("name"))
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Manifest {
            name: name.to_string(),
            version: text("version"),
            description: text("description"),
            author: text("author"),
            tags: list("tags"),
            skills: list("skills"),
            runtimes: list("runtimes"),
        }
    }

    /// No declared runtimes means every runtime; `-` and `_` are the same.
    pub fn supports(&self, runtime: &str) -> bool {
        self.runtimes.is_empty() || self.runtimes.iter().any(|r| same_runtime(r, runtime))
    }
}

fn same_runtime(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim().to_ascii_lowercase().replace('-', "_");
    norm(a) == norm(b)
}

/// An installed plugin and whether the workspace's runtime supports it.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    #[serde(flatten)]
    pub manifest: Manifest,
    pub supported_on_runtime: bool,
}

/// `GET …/plugins/compatibility`: the installed plugins against a runtime.
#[derive(Debug, Clone, Serialize)]
pub struct Compatibility {
    pub target_runtime: String,
    pub compatible: Vec<String>,
    pub incompatible: Vec<String>,
    pub all_compatible: bool,
}

/// A plugin ready to download.
#[derive(Debug)]
pub struct PluginArchive {
    pub name: String,
    pub source: String,
    pub tar_gz: Vec<u8>,
}

/// `CLAUDE.md` without the blocks plugin `name` added: each starts at a line
/// `# Plugin: <name> /…` and runs to the next `# Plugin: ` line.
pub fn strip_plugin_blocks(text: &str, name: &str) -> String {
    let start = format!("# Plugin: {name} /");
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        if line.starts_with(&start) {
            skipping = true;
            continue;
        }
        if skipping && line.starts_with("# Plugin: ") {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
        }
    }
    out
}

fn source_error(e: SourceError) -> AppError {
    match e {
        SourceError::UnknownScheme(scheme) => AppError::UnknownPluginScheme {
            scheme,
            available: &SCHEMES,
        },
        SourceError::Invalid(m) => AppError::invalid(m),
    }
}

fn stage_error(source: &Source, e: StageError) -> AppError {
    let fetch = |failure, message: String| AppError::PluginFetch {
        failure,
        message,
        origin: source.to_string(),
    };
    match e {
        StageError::NotFound(m) => fetch(FetchFailureKind::NotFound, m),
        StageError::Timeout => fetch(FetchFailureKind::Timeout, "plugin fetch timed out".into()),
        StageError::Failed(m) => fetch(FetchFailureKind::Failed, m),
        StageError::TooLarge(max) => {
            AppError::TooLarge(format!("plugin is larger than {max} bytes"))
        }
        StageError::Invalid(m) => AppError::invalid(m),
    }
}

impl App {
    fn plugins_dir(&self) -> PathBuf {
        self.config.plugins_dir()
    }

    /// Every plugin of the registry, by name; with `runtime`, only those it
    /// supports.
    pub async fn plugin_registry(&self, runtime: Option<&str>) -> AppResult<Vec<Manifest>> {
        let dir = self.plugins_dir();
        let mut found = Vec::new();
        let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
            return Ok(found);
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !valid_name(&name) || !entry.file_type().await.is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let yaml = tokio::fs::read_to_string(entry.path().join("plugin.yaml"))
                .await
                .ok();
            let manifest = Manifest::parse(&name, yaml.as_deref());
            if runtime.is_none_or(|r| manifest.supports(r)) {
                found.push(manifest);
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    async fn is_running(&self, id: uuid::Uuid) -> AppResult<bool> {
        Ok(self.provisioner()?.inspect(id).await == Observation::Running)
    }

    /// `GET …/plugins`: what is in `/configs/plugins` (`[]` when the
    /// workspace does not run).
    pub async fn plugins_installed(&self, access: WorkspaceAccess) -> AppResult<Vec<Installed>> {
        let id = access.uuid();
        let row = self.workspace_row(id).await?;
        if self.provisioner.is_none() || !self.is_running(id).await? {
            return Ok(Vec::new());
        }
        let prov = self.provisioner()?;
        let entries = match prov
            .list_files(id, FileRoot::Configs, "plugins", ListDepth::CHILDREN)
            .await
        {
            Ok(entries) => entries,
            Err(molecule_provisioner::ProvisionError::NotFound) => return Ok(Vec::new()),
            Err(e) => {
                return Err(AppError::Internal {
                    public: "failed to list plugins",
                    cause: e.to_string(),
                });
            }
        };
        let mut out = Vec::new();
        for entry in entries.into_iter().filter(|e| e.dir) {
            let name = entry.path.trim_end_matches('/').to_string();
            if !valid_name(&name) {
                continue;
            }
            let manifest = self.installed_manifest(id, &name).await?;
            out.push(Installed {
                supported_on_runtime: manifest.supports(row.runtime.as_str()),
                manifest,
            });
        }
        out.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
        Ok(out)
    }

    async fn installed_manifest(&self, id: uuid::Uuid, name: &str) -> AppResult<Manifest> {
        let yaml = self
            .provisioner()?
            .read_file(
                id,
                FileRoot::Configs,
                &format!("plugins/{name}/plugin.yaml"),
                MAX_TEXT_FILE,
            )
            .await
            .ok()
            .flatten();
        let yaml = yaml.map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(Manifest::parse(name, yaml.as_deref()))
    }

    /// `GET …/plugins/available`: the registry, for the workspace's runtime.
    pub async fn plugins_available(&self, access: WorkspaceAccess) -> AppResult<Vec<Manifest>> {
        let row = self.workspace_row(access.uuid()).await?;
        self.plugin_registry(Some(row.runtime.as_str())).await
    }

    /// `GET …/plugins/compatibility?runtime=`: the installed plugins
    /// against `runtime`.
    pub async fn plugins_compatibility(
        &self,
        access: WorkspaceAccess,
        runtime: &str,
    ) -> AppResult<Compatibility> {
        let runtime = runtime.trim();
        if runtime.is_empty() {
            return Err(AppError::invalid("runtime is required"));
        }
        let installed = self.plugins_installed(access).await?;
        let (compatible, incompatible): (Vec<_>, Vec<_>) = installed
            .into_iter()
            .map(|p| p.manifest)
            .partition(|m| m.supports(runtime));
        Ok(Compatibility {
            target_runtime: runtime.to_string(),
            all_compatible: incompatible.is_empty(),
            compatible: compatible.into_iter().map(|m| m.name).collect(),
            incompatible: incompatible.into_iter().map(|m| m.name).collect(),
        })
    }

    /// Parses `raw` and stages it; a source fetched from elsewhere needs an
    /// operator (`admin`).
    async fn staged(&self, raw: &str, admin: Option<AdminAccess>) -> AppResult<(Source, Staged)> {
        let source = Source::parse(raw).map_err(source_error)?;
        if source.is_remote() && admin.is_none() {
            return Err(AppError::forbidden(
                "installing from github:// or https:// needs the admin token; a workspace token installs from the registry",
            ));
        }
        let registry = self.plugins_dir();
        let limits = StageLimits {
            registry: &registry,
            git_base: &self.config.plugins_git_base,
            max_bytes: self.config.plugin_max_bytes,
            timeout: self.config.plugin_fetch_timeout,
        };
        let staged = self
            .stage_plugin(&source, &limits)
            .await
            .map_err(|e| stage_error(&source, e))?;
        Ok((source, staged))
    }

    /// `POST …/plugins {source}`: stage, copy into `/configs/plugins/<name>`,
    /// restart through the governor as an operator action.
    pub async fn plugin_install(
        &self,
        access: WorkspaceAccess,
        admin: Option<AdminAccess>,
        raw_source: &str,
    ) -> AppResult<(String, String)> {
        let id = access.uuid();
        let row = self.live_workspace_row(id).await?;
        if raw_source.trim().is_empty() {
            return Err(AppError::invalid("source is required"));
        }
        let prov = self.provisioner()?.clone();
        if !self.is_running(id).await? {
            return Err(AppError::Unavailable("workspace container not running"));
        }
        let (source, staged) = self.staged(raw_source, admin).await?;
        let dir = format!("plugins/{}", staged.name);
        // A reinstall replaces the plugin whole; a missing directory is fine.
        let _ = prov.delete_path(id, &dir).await;
        let files: Vec<(String, Vec<u8>)> = staged
            .files
            .into_iter()
            .map(|(path, data)| (format!("{dir}/{path}"), data))
            .collect();
        prov.write_files(id, &files)
            .await
            .map_err(|e| AppError::Internal {
                public: "failed to copy plugin to container",
                cause: e.to_string(),
            })?;
        tracing::info!(workspace_id = %id, plugin = %staged.name, source = %source, "plugin installed");
        self.operator_restart(&row, &format!("plugin {} installed", staged.name))
            .await?;
        Ok((staged.name, source.to_string()))
    }

    /// `DELETE …/plugins/:name`: its `CLAUDE.md` blocks, skills and
    /// directory removed, then an operator restart.
    pub async fn plugin_uninstall(&self, access: WorkspaceAccess, name: &str) -> AppResult<()> {
        let id = access.uuid();
        if !valid_name(name) {
            return Err(AppError::invalid("invalid plugin name"));
        }
        let row = self.live_workspace_row(id).await?;
        let prov = self.provisioner()?.clone();
        if !self.is_running(id).await? {
            return Err(AppError::Unavailable("workspace container not running"));
        }
        let installed = prov
            .list_files(id, FileRoot::Configs, "plugins", ListDepth::CHILDREN)
            .await
            .unwrap_or_default()
            .into_iter()
            .any(|e| e.dir && e.path.trim_end_matches('/') == name);
        if !installed {
            return Err(AppError::not_found(format!(
                "plugin {name} is not installed"
            )));
        }
        let manifest = self.installed_manifest(id, name).await?;
        let failed = |e: molecule_provisioner::ProvisionError| AppError::Internal {
            public: "failed to remove plugin",
            cause: e.to_string(),
        };
        if let Ok(Some(text)) = prov
            .read_file(id, FileRoot::Configs, "CLAUDE.md", MAX_TEXT_FILE)
            .await
        {
            let text = String::from_utf8_lossy(&text);
            let stripped = strip_plugin_blocks(&text, name);
            if stripped != text {
                prov.write_files(id, &[("CLAUDE.md".into(), stripped.into_bytes())])
                    .await
                    .map_err(failed)?;
            }
        }
        for skill in manifest.skills.iter().filter(|s| valid_name(s)) {
            let _ = prov.delete_path(id, &format!("skills/{skill}")).await;
        }
        prov.delete_path(id, &format!("plugins/{name}"))
            .await
            .map_err(failed)?;
        tracing::info!(workspace_id = %id, plugin = %name, "plugin uninstalled");
        self.operator_restart(&row, &format!("plugin {name} uninstalled"))
            .await
    }

    /// `GET …/plugins/:name/download?source=`: the staged plugin as a
    /// `.tar.gz` (default source `local://<name>`); its name must be `name`.
    pub async fn plugin_download(
        &self,
        access: WorkspaceAccess,
        admin: Option<AdminAccess>,
        name: &str,
        source: Option<&str>,
    ) -> AppResult<PluginArchive> {
        self.workspace_row(access.uuid()).await?;
        if !valid_name(name) {
            return Err(AppError::invalid("invalid plugin name"));
        }
        let raw = source
            .filter(|s| !s.trim().is_empty())
            .map_or_else(|| format!("local://{name}"), str::to_owned);
        let (source, staged) = self.staged(&raw, admin).await?;
        if staged.name != name {
            return Err(AppError::PluginNameMismatch {
                resolved: staged.name,
                requested: name.to_string(),
            });
        }
        let tar_gz = archive::tar_gz(&staged.files).map_err(|e| AppError::Internal {
            public: "failed to pack plugin",
            cause: e.to_string(),
        })?;
        Ok(PluginArchive {
            name: staged.name,
            source: source.to_string(),
            tar_gz,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_read_every_field_and_tolerate_a_missing_file() {
        let m = Manifest::parse(
            "tools",
            Some(
                "version: 1.2\ndescription: Handy\nauthor: me\ntags: [a, b]\nskills:\n  - lint\n  - {id: fmt}\nruntimes: [claude-code]\n",
            ),
        );
        assert_eq!(m.version, "1.2");
        assert_eq!(m.skills, ["lint", "fmt"]);
        assert!(m.supports("claude_code") && m.supports("Claude-Code"));
        assert!(!m.supports("langgraph"));
        let bare = Manifest::parse("bare", None);
        assert!(bare.supports("anything"), "no runtimes: every runtime");
        assert_eq!(bare.version, "");
    }

    #[test]
    fn only_the_named_plugins_blocks_leave_claude_md() {
        let text = "intro\n# Plugin: tools / lint\nlint rules\n# Plugin: other / x\nkeep\n# Plugin: tools / fmt\nfmt rules\n";
        assert_eq!(
            strip_plugin_blocks(text, "tools"),
            "intro\n# Plugin: other / x\nkeep\n"
        );
        assert_eq!(strip_plugin_blocks(text, "none"), text);
    }
}
