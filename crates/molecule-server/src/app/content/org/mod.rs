//! Org templates and org import (api-contract §5.16, subsystems §5.2): a
//! whole organisation from one `org.yaml` (or the same shape inline),
//! created parent first, each workspace complete before its first start
//! (files, generated `config.yaml` with routing and prompts, `.env` secrets
//! sealed), schedules after it.
//!
//! Fixed against the reference: `.env` secrets are stored encrypted; a
//! schedule with a bad cron expression stops the import at its node
//! instead of firing once; prompt files, `files_dir` and `.env` files must
//! stay inside the org directory (no `..`, no symbolic link on the way);
//! starts run in parallel (the provisioner's bounded jobs), not one at a
//! time with a pause; plugins and channels, which this platform does not
//! have yet, are reported as skipped with the reason instead of failing
//! or vanishing.

mod yaml;

use yaml::{OrgNode, OrgTemplate, count, parse_env, read_org_yaml};

use std::path::{Path, PathBuf};

use molecule_store::SeedFiles;
use molecule_types::content::{OrgImport, OrgImported, OrgTemplateSummary, OrgWorkspace, Skipped};
use molecule_types::dto::CreateWorkspace;
use molecule_types::workspace_data::CreateSchedule;
use uuid::Uuid;

use crate::app::App;
use crate::app::auth::AdminAccess;
use crate::app::content::paths::inside;
use crate::app::content::templates::{generated_config, read_tree, yaml_str};
use crate::app::workspaces::{Creation, DEFAULT_RUNTIME};
use crate::error::{AppError, AppResult};

/// Most workspaces one import creates.
const MAX_NODES: usize = 500;
/// Largest prompt file read.
const MAX_PROMPT_BYTES: u64 = 256 * 1024;
/// Tier of a node that names none, when the defaults name none either.
const DEFAULT_TIER: i64 = 2;
/// `idle_interval_seconds` when an idle prompt is set without one.
const DEFAULT_IDLE_SECONDS: u64 = 600;

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Where an import reads its files from (`None` for an inline template).
struct Source {
    dir: Option<PathBuf>,
}

impl Source {
    fn needs_dir(&self, what: &str) -> AppResult<&Path> {
        self.dir.as_deref().ok_or_else(|| {
            AppError::invalid(format!("{what} needs an org directory (import with `dir`)"))
        })
    }

    /// `rel` inside `base` (itself inside the org directory), which must be
    /// a regular file.
    async fn text(&self, base: &Path, rel: &str, what: &str) -> AppResult<String> {
        self.needs_dir(what)?;
        let path =
            inside(base, rel).map_err(|_| AppError::invalid(format!("invalid {what}: {rel}")))?;
        match tokio::fs::symlink_metadata(&path).await {
            Ok(m) if m.is_file() && m.len() <= MAX_PROMPT_BYTES => {}
            Ok(m) if m.is_file() => {
                return Err(AppError::invalid(format!(
                    "{what} {rel} is larger than {MAX_PROMPT_BYTES} bytes"
                )));
            }
            _ => return Err(AppError::invalid(format!("{what} not found: {rel}"))),
        }
        tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| AppError::invalid(format!("{what} {rel} is not readable text: {e}")))
    }

    /// The `.env` pairs of a directory, if it has one.
    async fn env(&self, dir: &Path) -> AppResult<Vec<(String, String)>> {
        let path = dir.join(".env");
        match tokio::fs::symlink_metadata(&path).await {
            Ok(m) if m.is_file() => {}
            _ => return Ok(Vec::new()),
        }
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| AppError::invalid(format!("{} is not readable: {e}", path.display())))?;
        Ok(parse_env(&text))
    }
}

/// A prompt: inline, else from a file, else `None`.
async fn prompt(
    src: &Source,
    base: &Path,
    inline: &Option<String>,
    file: &Option<String>,
    what: &str,
) -> AppResult<Option<String>> {
    if let Some(p) = nonempty(inline) {
        return Ok(Some(p.to_string()));
    }
    match nonempty(file) {
        Some(f) => Ok(Some(src.text(base, f, what).await?)),
        None => Ok(None),
    }
}

/// Everything one node needs, resolved and checked before it is created.
struct Planned {
    req: CreateWorkspace,
    creation: Creation,
    schedules: Vec<CreateSchedule>,
    plugins_skipped: Vec<Skipped>,
    channels_skipped: Vec<Skipped>,
}

impl App {
    /// `GET /org/templates`: directories of the org templates directory
    /// with an `org.yaml` (or `org.yml`).
    pub async fn org_templates(&self, _: AdminAccess) -> Vec<OrgTemplateSummary> {
        let root = self.config.org_templates_dir();
        let mut out = Vec::new();
        let Ok(mut entries) = tokio::fs::read_dir(&root).await else {
            return out;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let dir = entry.file_name().to_string_lossy().into_owned();
            if dir.starts_with('.') || !entry.file_type().await.is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some(org) = read_org_yaml(&entry.path()).await.ok().flatten() else {
                continue;
            };
            out.push(OrgTemplateSummary {
                name: if org.name.is_empty() {
                    dir.clone()
                } else {
                    org.name.clone()
                },
                description: org.description.clone(),
                workspaces: count(&org.workspaces),
                dir,
            });
        }
        out.sort_by(|a, b| a.dir.cmp(&b.dir));
        out
    }

    /// `POST /org/import`. `Ok((true, …))` when every workspace was
    /// created, `Ok((false, …))` when a node failed and the walk stopped
    /// there (207).
    pub async fn org_import(
        &self,
        admin: AdminAccess,
        req: OrgImport,
    ) -> AppResult<(bool, OrgImported)> {
        let (org, src) = match (nonempty(&req.dir), req.template) {
            (Some(dir), _) => {
                let root = self.config.org_templates_dir();
                let path = inside(&root, dir)
                    .map_err(|e| AppError::invalid(format!("invalid dir: {e}")))?;
                if dir.trim_matches('/').is_empty() {
                    return Err(AppError::invalid("invalid dir: empty"));
                }
                let org = read_org_yaml(&path)
                    .await?
                    .ok_or_else(|| AppError::not_found(format!("org template not found: {dir}")))?;
                (org, Source { dir: Some(path) })
            }
            (None, Some(template)) => {
                let org: OrgTemplate = serde_json::from_value(template)
                    .map_err(|e| AppError::invalid(format!("invalid template: {e}")))?;
                if org.name.trim().is_empty() {
                    return Err(AppError::invalid("template.name is required"));
                }
                (org, Source { dir: None })
            }
            (None, None) => return Err(AppError::invalid("provide 'dir' or 'template'")),
        };
        if org.workspaces.is_empty() {
            return Err(AppError::invalid("the org has no workspaces"));
        }
        let total = count(&org.workspaces);
        if total > MAX_NODES {
            return Err(AppError::invalid(format!(
                "too many workspaces ({total}, limit {MAX_NODES})"
            )));
        }
        // Every path the tree names is checked before anything is created:
        // one that could leave the org directory refuses the whole import.
        check_paths(&org, &src)?;
        let org_env = match &src.dir {
            Some(d) => src.env(d).await?,
            None => Vec::new(),
        };
        let mut created = Vec::new();
        // Parent first, depth first, in the file's order.
        let mut stack: Vec<(&OrgNode, Option<Uuid>)> =
            org.workspaces.iter().rev().map(|n| (n, None)).collect();
        while let Some((node, parent)) = stack.pop() {
            let label = if node.name.trim().is_empty() {
                "(unnamed)".to_string()
            } else {
                node.name.trim().to_string()
            };
            let done = async {
                let plan = self.plan_node(&org, &src, &org_env, node, parent).await?;
                let ws = self
                    .create_workspace(admin, plan.req.clone(), plan.creation)
                    .await?;
                for s in plan.schedules {
                    self.schedule_add(ws.id, s, "template").await?;
                }
                Ok::<_, AppError>(OrgWorkspace {
                    id: ws.id,
                    name: plan.req.name,
                    tier: plan.req.tier.unwrap_or(DEFAULT_TIER as i32),
                    parent_id: parent,
                    plugins_skipped: plan.plugins_skipped,
                    channels_skipped: plan.channels_skipped,
                })
            }
            .await;
            match done {
                Ok(ws) => {
                    let id = ws.id;
                    created.push(ws);
                    stack.extend(node.children.iter().rev().map(|c| (c, Some(id))));
                }
                Err(e) => {
                    let count = created.len();
                    return Ok((
                        false,
                        OrgImported {
                            org: org.name.clone(),
                            workspaces: created,
                            count,
                            error: Some(format!("workspace {label}: {}", public_text(&e))),
                        },
                    ));
                }
            }
        }
        let count = created.len();
        Ok((
            true,
            OrgImported {
                org: org.name.clone(),
                workspaces: created,
                count,
                error: None,
            },
        ))
    }

    async fn plan_node(
        &self,
        org: &OrgTemplate,
        src: &Source,
        org_env: &[(String, String)],
        node: &OrgNode,
        parent: Option<Uuid>,
    ) -> AppResult<Planned> {
        let d = &org.defaults;
        let name = node.name.trim().to_string();
        if name.is_empty() {
            return Err(AppError::invalid("name is required"));
        }
        let runtime = nonempty(&node.runtime)
            .or(nonempty(&d.runtime))
            .unwrap_or(DEFAULT_RUNTIME)
            .to_string();
        let model = nonempty(&node.model)
            .or(nonempty(&d.model))
            .map(str::to_string);
        let tier = node.tier.or(d.tier).unwrap_or(DEFAULT_TIER);
        let tier = crate::app::validation::validate_tier(tier)?;
        // Where this node's files and prompt files are.
        let base = match (&src.dir, nonempty(&node.files_dir)) {
            (_, Some(f)) => {
                let org_dir = src.needs_dir("files_dir")?;
                let dir = inside(org_dir, f)
                    .map_err(|_| AppError::invalid(format!("invalid files_dir: {f}")))?;
                if !tokio::fs::symlink_metadata(&dir)
                    .await
                    .is_ok_and(|m| m.is_dir())
                {
                    return Err(AppError::invalid(format!("files_dir not found: {f}")));
                }
                Some(dir)
            }
            (Some(org_dir), None) => Some(org_dir.clone()),
            (None, None) => None,
        };
        let base_path = base.clone().unwrap_or_default();
        let system_prompt = nonempty(&node.system_prompt).map(str::to_string);
        let initial = match prompt(
            src,
            &base_path,
            &node.initial_prompt,
            &node.initial_prompt_file,
            "initial_prompt_file",
        )
        .await?
        {
            Some(p) => Some(p),
            None => {
                let org_dir = src.dir.clone().unwrap_or_default();
                prompt(
                    src,
                    &org_dir,
                    &d.initial_prompt,
                    &d.initial_prompt_file,
                    "initial_prompt_file",
                )
                .await?
            }
        };
        let idle = match prompt(
            src,
            &base_path,
            &node.idle_prompt,
            &node.idle_prompt_file,
            "idle_prompt_file",
        )
        .await?
        {
            Some(p) => Some(p),
            None => {
                let org_dir = src.dir.clone().unwrap_or_default();
                prompt(
                    src,
                    &org_dir,
                    &d.idle_prompt,
                    &d.idle_prompt_file,
                    "idle_prompt_file",
                )
                .await?
            }
        };
        let idle_seconds = node
            .idle_interval_seconds
            .or(d.idle_interval_seconds)
            .unwrap_or(DEFAULT_IDLE_SECONDS);
        // Routing: the node's keys replace the defaults'; an empty list
        // removes a category.
        let mut routing = d.category_routing.clone();
        for (k, v) in &node.category_routing {
            if v.is_empty() {
                routing.remove(k);
            } else {
                routing.insert(k.clone(), v.clone());
            }
        }
        // Schedules, all checked before anything is created.
        let mut schedules = Vec::new();
        for s in &node.schedules {
            let text = match prompt(
                src,
                &base_path,
                &s.prompt,
                &s.prompt_file,
                "schedule prompt_file",
            )
            .await?
            {
                Some(p) => p,
                None => continue,
            };
            let req = CreateSchedule {
                name: s.name.clone(),
                cron_expr: s.cron_expr.clone(),
                timezone: s.timezone.clone(),
                prompt: text,
                enabled: s.enabled,
            };
            self.schedule_check(&req).map_err(|e| {
                AppError::invalid(format!("schedule {:?}: {}", s.name, public_text(&e)))
            })?;
            schedules.push(req);
        }
        // Plugins: the defaults' and the node's, `!x`/`-x` opting out.
        let mut plugins: Vec<String> = d.plugins.clone();
        for p in &node.plugins {
            if let Some(out) = p.strip_prefix('!').or_else(|| p.strip_prefix('-')) {
                plugins.retain(|x| x != out);
            } else if !plugins.contains(p) {
                plugins.push(p.clone());
            }
        }
        let plugins_skipped = plugins
            .into_iter()
            .map(|p| Skipped {
                workspace: name.clone(),
                kind: p,
                reason: "this platform has no plugin registry yet; install it once plugins exist"
                    .into(),
            })
            .collect();
        let channels_skipped = node
            .channels
            .iter()
            .filter(|c| c.enabled != Some(false))
            .map(|c| Skipped {
                workspace: name.clone(),
                kind: c.kind.clone(),
                reason: "this platform has no channels yet".into(),
            })
            .collect();
        // Secrets: the org's .env, then the files_dir's.
        let mut secrets: Vec<(String, String)> = org_env.to_vec();
        if let (Some(b), Some(_)) = (&base, nonempty(&node.files_dir)) {
            secrets.extend(src.env(b).await?);
        }
        for (k, v) in &secrets {
            crate::app::resources::secrets::validate(k, v)
                .map_err(|e| AppError::invalid(format!(".env {k}: {}", public_text(&e))))?;
        }
        // Files: the files_dir (instead of the template), else the
        // template; then the generated config and the prompts.
        let files = if node.external {
            None
        } else {
            let mut files: SeedFiles =
                match (nonempty(&node.files_dir), &base, nonempty(&node.template)) {
                    (Some(_), Some(dir), _) => read_tree(dir).await.map_err(|e| {
                        AppError::invalid(format!("files_dir is not readable: {e}"))
                    })?,
                    (_, _, Some(t)) => self.template(t).await?.map(|t| t.files).unwrap_or_default(),
                    _ => SeedFiles::new(),
                };
            files.remove(".env");
            let mut config = generated_config(
                &name,
                node.role.as_deref(),
                model.as_deref(),
                tier,
                &runtime,
            );
            if !routing.is_empty() {
                config.push_str("category_routing:\n");
                for (cat, roles) in &routing {
                    let roles: Vec<String> = roles.iter().map(|r| yaml_str(r)).collect();
                    config.push_str(&format!("  {}: [{}]\n", yaml_str(cat), roles.join(", ")));
                }
            }
            if let Some(p) = &initial {
                config.push_str(&format!("initial_prompt: {}\n", yaml_str(p)));
            }
            if let Some(p) = &idle {
                config.push_str(&format!(
                    "idle_prompt: {}\nidle_interval_seconds: {idle_seconds}\n",
                    yaml_str(p)
                ));
            }
            files.insert("config.yaml".into(), config);
            if let Some(p) = &system_prompt {
                files.insert("system-prompt.md".into(), p.clone());
            }
            Some(files)
        };
        Ok(Planned {
            req: CreateWorkspace {
                name,
                role: node.role.clone(),
                template: None,
                tier: Some(tier),
                model,
                runtime: Some(runtime),
                external: node.external,
                url: node.url.clone(),
                workspace_dir: node.workspace_dir.clone(),
                workspace_access: node.workspace_access.clone(),
                parent_id: parent,
                canvas: node.canvas.clone(),
            },
            creation: Creation {
                files,
                secrets,
                source_bundle_id: None,
            },
            schedules,
            plugins_skipped,
            channels_skipped,
        })
    }
}

/// Every file name of the tree (`files_dir`, prompt files, schedule
/// prompt files) stays inside the org directory: relative, no `..`, no
/// symbolic link on the way. Whether the files exist is each node's
/// business (a missing one stops the walk at its node, 207).
fn check_paths(org: &OrgTemplate, src: &Source) -> AppResult<()> {
    fn named(src: &Source, base: &Path, file: &Option<String>, what: &str) -> AppResult<()> {
        if let Some(f) = nonempty(file) {
            src.needs_dir(what)?;
            inside(base, f).map_err(|e| AppError::invalid(format!("invalid {what}: {e}")))?;
        }
        Ok(())
    }
    fn walk(src: &Source, org_dir: &Path, nodes: &[OrgNode]) -> AppResult<()> {
        for n in nodes {
            let base = match nonempty(&n.files_dir) {
                Some(f) => {
                    src.needs_dir("files_dir")?;
                    inside(org_dir, f)
                        .map_err(|e| AppError::invalid(format!("invalid files_dir: {e}")))?
                }
                None => org_dir.to_path_buf(),
            };
            named(src, &base, &n.initial_prompt_file, "initial_prompt_file")?;
            named(src, &base, &n.idle_prompt_file, "idle_prompt_file")?;
            for s in &n.schedules {
                named(src, &base, &s.prompt_file, "schedule prompt_file")?;
            }
            walk(src, org_dir, &n.children)?;
        }
        Ok(())
    }
    let org_dir = src.dir.clone().unwrap_or_default();
    named(
        src,
        &org_dir,
        &org.defaults.initial_prompt_file,
        "initial_prompt_file",
    )?;
    named(
        src,
        &org_dir,
        &org.defaults.idle_prompt_file,
        "idle_prompt_file",
    )?;
    walk(src, &org_dir, &org.workspaces)
}

/// The text a client may see of an error (an internal cause stays in the
/// log).
fn public_text(e: &AppError) -> String {
    match e {
        AppError::Internal { public, .. } => (*public).to_string(),
        other => {
            let s = other.to_string();
            // "invalid request: x" → "x"
            s.split_once(": ").map(|(_, m)| m.to_string()).unwrap_or(s)
        }
    }
}
