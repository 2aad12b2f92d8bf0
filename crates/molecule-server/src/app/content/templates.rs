//! Workspace templates (api-contract §5.14; subsystems §1.8, §5.4): one
//! directory per template under the templates directory
//! (`Config::templates_dir`), holding a `config.yaml` and whatever else the
//! agent reads from `/configs` (prompts, skills).
//!
//! A workspace created from a template gets a copy of its files, resolved
//! when it is created and kept as the workspace's seed
//! (`molecule_store::SeedStore`) until its first provisioning writes them:
//! later edits of the template do not change workspaces made from it.
//!
//! Templates are read with `tokio::fs`, never following a symbolic link:
//! a link in a template is skipped, so a template cannot smuggle a host
//! file into a workspace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use molecule_store::SeedFiles;
use molecule_types::content::{ImportTemplate, TemplateImported, TemplateSummary};
use serde_json::Value;

use crate::app::App;
use crate::app::auth::AdminAccess;
use crate::app::content::paths::{clean_relative, file_path};
use crate::error::{AppError, AppResult};

/// Most files a template (or an import, or a replace) may hold.
pub const MAX_FILES: usize = 200;
/// Largest single file read or written through the content routes.
pub const MAX_FILE_BYTES: usize = 5 << 20;
/// Largest template read as a whole.
const MAX_TEMPLATE_BYTES: usize = 20 << 20;
/// Deepest directory level read inside a template.
const MAX_DEPTH: usize = 8;
/// Names never copied or listed: the provisioner's skip list.
pub use molecule_provisioner::files::SKIPPED_NAMES;

/// The directory name of a template called `name`: spaces and `-` become
/// `-`, ASCII letters are lower-cased, `[a-z0-9_-]` is kept, everything
/// else dropped; `unnamed` when nothing is left.
pub fn normalise_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        match c {
            ' ' | '-' => out.push('-'),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            'a'..='z' | '0'..='9' | '_' => out.push(c),
            _ => {}
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "unnamed".into()
    } else {
        out
    }
}

/// Parse YAML into JSON values (`None` when it does not parse).
pub fn parse_yaml(text: &str) -> Option<Value> {
    serde_saphyr::from_str::<Value>(text).ok()
}

fn text_of(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Skill ids of a config's `skills` list.
fn skill_ids(config: &Value) -> Vec<String> {
    let Some(Value::Array(items)) = config.get("skills") else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|s| match s {
            Value::String(id) => Some(id.clone()),
            Value::Object(_) => text_of(s, "id").or_else(|| text_of(s, "name")),
            _ => None,
        })
        .collect()
}

/// A YAML scalar that reads back as exactly `s` (a JSON string is a valid
/// YAML double-quoted scalar).
pub fn yaml_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// `text` with its top-level `key:` line set to `key: value` (appended
/// when there is none).
fn set_top_level(text: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key}:");
    let mut found = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|line| {
            if !found && line.starts_with(&prefix) {
                found = true;
                format!("{key}: {value}")
            } else {
                line.to_string()
            }
        })
        .collect();
    if !found {
        out.push(format!("{key}: {value}"));
    }
    let mut joined = out.join("\n");
    joined.push('\n');
    joined
}

/// What a template is made of, read from disk.
#[derive(Debug, Clone, Default)]
pub struct Template {
    pub files: SeedFiles,
    /// Its `config.yaml`, parsed (`Null` when absent or unparsable).
    pub config: Value,
}

/// Every regular UTF-8 file under `dir`, by relative path. Symbolic links
/// and the skip list are left out; binary files are skipped with a warning.
pub async fn read_tree(dir: &Path) -> std::io::Result<SeedFiles> {
    let mut files = BTreeMap::new();
    let mut total = 0usize;
    let mut stack: Vec<(PathBuf, String, usize)> = vec![(dir.to_path_buf(), String::new(), 0)];
    while let Some((at, rel, depth)) = stack.pop() {
        let mut entries = tokio::fs::read_dir(&at).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if SKIPPED_NAMES.contains(&name.as_str()) {
                continue;
            }
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type().await?;
            if kind.is_dir() && depth + 1 < MAX_DEPTH {
                stack.push((entry.path(), path, depth + 1));
            } else if kind.is_file() {
                if files.len() >= MAX_FILES {
                    return Err(std::io::Error::other(format!(
                        "more than {MAX_FILES} files"
                    )));
                }
                let bytes = tokio::fs::read(entry.path()).await?;
                if bytes.len() > MAX_FILE_BYTES {
                    return Err(std::io::Error::other(format!(
                        "{path} is larger than {MAX_FILE_BYTES} bytes"
                    )));
                }
                total += bytes.len();
                if total > MAX_TEMPLATE_BYTES {
                    return Err(std::io::Error::other(format!(
                        "larger than {MAX_TEMPLATE_BYTES} bytes in all"
                    )));
                }
                match String::from_utf8(bytes) {
                    Ok(text) => {
                        files.insert(path, text);
                    }
                    Err(_) => tracing::warn!(file = %path, "binary file in a template skipped"),
                }
            }
            // Symbolic links (and anything else) are never followed.
        }
    }
    Ok(files)
}

/// `config.yaml` generated for `POST /templates/import` without one.
fn imported_config(name: &str, files: &BTreeMap<String, String>) -> String {
    let mut prompts: Vec<&str> = files
        .keys()
        .filter(|p| !p.contains('/') && p.ends_with(".md"))
        .map(String::as_str)
        .collect();
    if prompts.is_empty() && files.contains_key("system-prompt.md") {
        prompts.push("system-prompt.md");
    }
    let skills: Vec<&str> = files
        .keys()
        .filter_map(|p| {
            let rest = p.strip_prefix("skills/")?;
            let (skill, file) = rest.split_once('/')?;
            (file == "SKILL.md").then_some(skill)
        })
        .collect();
    let list = |items: &[&str]| {
        if items.is_empty() {
            "[]".to_string()
        } else {
            let inner: Vec<String> = items.iter().map(|i| yaml_str(i)).collect();
            format!("[{}]", inner.join(", "))
        }
    };
    format!(
        "name: {}\ndescription: \"Imported agent\"\nversion: 1.0.0\ntier: 1\n\
         model: \"anthropic:claude-haiku-4-5-20251001\"\nprompt_files: {}\nskills: {}\n\
         tools: []\na2a:\n  port: 8000\n  streaming: true\n  push_notifications: true\n\
         env:\n  required: [ANTHROPIC_API_KEY]\n",
        yaml_str(name),
        list(&prompts),
        list(&skills),
    )
}

/// `config.yaml` generated for a workspace created without a template (or
/// from one without a `config.yaml`): subsystems §1.8.
pub fn generated_config(
    name: &str,
    role: Option<&str>,
    model: Option<&str>,
    tier: i32,
    runtime: &str,
) -> String {
    let one_line = |s: &str| s.replace(['\n', '\r'], " ");
    let model = model
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| {
            if runtime == "claude-code" {
                "sonnet".into()
            } else {
                "anthropic:claude-sonnet-4-6".into()
            }
        });
    let mut out = format!(
        "name: {}\ndescription: {}\nmodel: {}\nversion: 1.0.0\ntier: {tier}\nruntime: {}\n",
        yaml_str(&one_line(name)),
        yaml_str(&one_line(role.unwrap_or(""))),
        yaml_str(&one_line(&model)),
        yaml_str(runtime),
    );
    match runtime {
        "claude-code" => out
            .push_str("runtime_config:\n  required_env: [CLAUDE_CODE_OAUTH_TOKEN]\n  timeout: 0\n"),
        "codex" => {
            out.push_str("runtime_config:\n  required_env: [OPENAI_API_KEY]\n  timeout: 0\n")
        }
        "langgraph" | "deepagents" => {}
        _ => out.push_str("runtime_config:\n  timeout: 0\n"),
    }
    out
}

impl App {
    /// The directory of template `name` (a relative path) inside the
    /// templates directory; 400 `invalid template` for anything that could
    /// leave it (`..`, an absolute path, a symbolic link on the way).
    pub(crate) fn template_dir(&self, name: &str) -> AppResult<PathBuf> {
        let clean = clean_relative(name).map_err(|_| AppError::invalid("invalid template"))?;
        if clean.is_empty() {
            return Err(AppError::invalid("invalid template"));
        }
        crate::app::content::paths::inside(&self.config.templates_dir(), &clean)
            .map_err(|_| AppError::invalid("invalid template"))
    }

    /// Template `name`, `None` when there is no such directory. A symbolic
    /// link in place of the directory counts as none.
    pub(crate) async fn template(&self, name: &str) -> AppResult<Option<Template>> {
        let dir = self.template_dir(name)?;
        match tokio::fs::symlink_metadata(&dir).await {
            Ok(m) if m.is_dir() => {}
            _ => return Ok(None),
        }
        let files = read_tree(&dir).await.map_err(|e| AppError::Internal {
            public: "failed to read template",
            cause: format!("{}: {e}", dir.display()),
        })?;
        let config = files
            .get("config.yaml")
            .and_then(|t| parse_yaml(t))
            .unwrap_or(Value::Null);
        Ok(Some(Template { files, config }))
    }

    /// What a new workspace's first provisioning writes into `/configs`,
    /// and the runtime it runs: the template's files when `template` names
    /// one (its `config.yaml`, with `model` set when one is given, else a
    /// generated one), else a generated `config.yaml`. The runtime is the
    /// request's, else the template's `runtime:`, else the default.
    pub(crate) async fn creation_seed(
        &self,
        template: Option<&str>,
        name: &str,
        role: Option<&str>,
        model: Option<&str>,
        tier: i32,
        runtime: Option<&str>,
    ) -> AppResult<(SeedFiles, String)> {
        let template = match template.filter(|t| !t.trim().is_empty()) {
            Some(t) => self.template(t.trim()).await?,
            None => None,
        };
        let runtime = runtime
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .or_else(|| {
                template
                    .as_ref()
                    .and_then(|t| text_of(&t.config, "runtime"))
            })
            .unwrap_or_else(|| crate::app::workspaces::DEFAULT_RUNTIME.to_string());
        let model = model.map(str::trim).filter(|m| !m.is_empty());
        let mut files = template.map(|t| t.files).unwrap_or_default();
        match files.get_mut("config.yaml") {
            Some(config) => {
                if let Some(m) = model {
                    *config = set_top_level(config, "model", &yaml_str(m));
                }
            }
            None => {
                files.insert(
                    "config.yaml".into(),
                    generated_config(name, role, model, tier, &runtime),
                );
            }
        }
        Ok((files, runtime))
    }

    /// `GET /templates`: every directory of the templates directory with a
    /// readable `config.yaml`, by id; `[]` when the directory is missing.
    pub async fn template_list(&self, _: AdminAccess) -> Vec<TemplateSummary> {
        self.template_configs()
            .await
            .into_iter()
            .map(|(id, config)| {
                let skills = skill_ids(&config);
                TemplateSummary {
                    name: text_of(&config, "name").unwrap_or_else(|| id.clone()),
                    description: text_of(&config, "description").unwrap_or_default(),
                    tier: config.get("tier").and_then(Value::as_i64).unwrap_or(1),
                    model: text_of(&config, "model").unwrap_or_default(),
                    skill_count: skills.len(),
                    skills,
                    id,
                }
            })
            .collect()
    }

    /// Every template directory with a regular `config.yaml`, by id, with
    /// that config parsed (`Null` when it does not parse); `[]` when the
    /// templates directory is missing.
    pub(crate) async fn template_configs(&self) -> Vec<(String, Value)> {
        let root = self.config.templates_dir();
        let mut out = Vec::new();
        let Ok(mut entries) = tokio::fs::read_dir(&root).await else {
            return out;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let id = entry.file_name().to_string_lossy().into_owned();
            if id.starts_with('.') || !entry.file_type().await.is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path().join("config.yaml");
            if !tokio::fs::symlink_metadata(&path)
                .await
                .is_ok_and(|m| m.is_file())
            {
                continue;
            }
            let Ok(text) = tokio::fs::read_to_string(&path).await else {
                continue;
            };
            out.push((id, parse_yaml(&text).unwrap_or(Value::Null)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// `POST /templates/import`: a new template directory, written whole
    /// (into a hidden staging directory renamed into place, so a reader
    /// never sees half of it and two imports of one name cannot mix).
    pub async fn template_import(
        &self,
        _: AdminAccess,
        req: ImportTemplate,
    ) -> AppResult<TemplateImported> {
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(AppError::invalid("name is required"));
        }
        if req.files.is_empty() {
            return Err(AppError::invalid("files is required"));
        }
        if req.files.len() > MAX_FILES {
            return Err(AppError::invalid(format!(
                "too many files (limit {MAX_FILES})"
            )));
        }
        let mut files = BTreeMap::new();
        for (path, content) in req.files {
            let clean = file_path(&path)?;
            if content.len() > MAX_FILE_BYTES {
                return Err(AppError::invalid(format!(
                    "{clean} is larger than {MAX_FILE_BYTES} bytes"
                )));
            }
            if files.insert(clean.clone(), content).is_some() {
                return Err(AppError::invalid(format!("{clean} is given twice")));
            }
        }
        let id = normalise_name(&name);
        if !files.contains_key("config.yaml") {
            let generated = imported_config(&name, &files);
            files.insert("config.yaml".into(), generated);
        }
        let root = self.config.templates_dir();
        let fail = |what: &'static str| {
            move |e: std::io::Error| AppError::Internal {
                public: what,
                cause: e.to_string(),
            }
        };
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(fail("failed to create templates directory"))?;
        let target = root.join(&id);
        if tokio::fs::symlink_metadata(&target).await.is_ok() {
            return Err(AppError::TemplateExists { id });
        }
        let staging = root.join(format!(".import-{}", uuid::Uuid::new_v4()));
        let written = write_tree(&staging, &files).await;
        let placed = match written {
            Ok(()) => rename_new(&staging, &target).await,
            Err(e) => Err(e),
        };
        match placed {
            Ok(true) => Ok(TemplateImported {
                status: "imported".into(),
                id,
                name,
            }),
            Ok(false) => {
                let _ = tokio::fs::remove_dir_all(&staging).await;
                Err(AppError::TemplateExists { id })
            }
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&staging).await;
                Err(fail("failed to write template")(e))
            }
        }
    }
}

/// Write `files` under `dir` (created), each file readable by its owner
/// only.
pub async fn write_tree(dir: &Path, files: &BTreeMap<String, String>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::create_dir_all(dir).await?;
    for (rel, content) in files {
        let path = rel.split('/').fold(dir.to_path_buf(), |p, c| p.join(c));
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(&path, content).await?;
        tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).await?;
    }
    Ok(())
}

/// Rename `from` to `to` unless `to` exists: true when renamed.
async fn rename_new(from: &Path, to: &Path) -> std::io::Result<bool> {
    // rename(2) replaces an empty directory silently; a hard check first,
    // and the rename itself fails on a non-empty one.
    if tokio::fs::symlink_metadata(to).await.is_ok() {
        return Ok(false);
    }
    match tokio::fs::rename(from, to).await {
        Ok(()) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::DirectoryNotEmpty | std::io::ErrorKind::AlreadyExists
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_to_directory_names() {
        for (name, want) in [
            ("My Agent", "my-agent"),
            ("SEO-Writer 2", "seo-writer-2"),
            ("../../etc", "etc"),
            ("Ünïcode", "ncode"),
            ("…", "unnamed"),
            ("a_b", "a_b"),
        ] {
            assert_eq!(normalise_name(name), want, "{name}");
        }
    }

    #[test]
    fn generated_configs_parse_back() {
        let text = generated_config(
            "Re\"search\ner",
            Some("finds: things"),
            None,
            2,
            "claude-code",
        );
        let v = parse_yaml(&text).unwrap();
        assert_eq!(v["name"], "Re\"search er");
        assert_eq!(v["description"], "finds: things");
        assert_eq!(v["model"], "sonnet");
        assert_eq!(v["tier"], 2);
        assert_eq!(
            v["runtime_config"]["required_env"][0],
            "CLAUDE_CODE_OAUTH_TOKEN"
        );
        let files: BTreeMap<String, String> = [
            ("system-prompt.md", ""),
            ("skills/search/SKILL.md", ""),
            ("skills/search/tool.py", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let v = parse_yaml(&imported_config("Imp: ort", &files)).unwrap();
        assert_eq!(v["name"], "Imp: ort");
        assert_eq!(v["prompt_files"][0], "system-prompt.md");
        assert_eq!(v["skills"], serde_json::json!(["search"]));
        assert_eq!(v["a2a"]["port"], 8000);
    }

    #[test]
    fn a_top_level_key_is_replaced_or_appended() {
        let text = "name: a\nmodel: old\nnested:\n  model: keep\n";
        let set = set_top_level(text, "model", "\"new\"");
        let v = parse_yaml(&set).unwrap();
        assert_eq!(
            (v["model"].as_str(), v["nested"]["model"].as_str()),
            (Some("new"), Some("keep"))
        );
        let v = parse_yaml(&set_top_level("name: a", "model", "\"m\"")).unwrap();
        assert_eq!(v["model"], "m");
    }

    #[test]
    fn skills_are_read_from_strings_and_maps() {
        let v = parse_yaml(
            "skills:\n  - search\n  - {id: sum, name: Summarise}\n  - {name: only}\n  - 3\n",
        )
        .unwrap();
        assert_eq!(skill_ids(&v), ["search", "sum", "only"]);
    }
}
