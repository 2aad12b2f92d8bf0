//! Bundles (api-contract §5.16, subsystems §5.3): a workspace and its
//! subtree as one JSON document. Export reads each workspace's `/configs`
//! (its runtime's files, or its seed before the first start); import
//! creates a new tree with new ids whose first starts write those files.
//!
//! Fixed against the reference: files of `/configs` other than the prompt,
//! config and skills travel too (`files`), so export → delete → import
//! gives the same `/configs`; every path in a bundle is checked (400, and
//! nothing is created) before anything is created; a child that cannot be
//! created is reported `failed` with its error instead of aborting the
//! parents already made.

use std::future::Future;
use std::pin::Pin;

use molecule_store::{SeedFiles, WorkspaceRow};
use molecule_types::content::{Bundle, BundleImported, BundleSkill};
use molecule_types::dto::CreateWorkspace;
use molecule_types::{WorkspaceId, WorkspaceStatus};
use serde_json::Value;
use uuid::Uuid;

use crate::app::App;
use crate::app::auth::AdminAccess;
use crate::app::content::paths::file_path;
use crate::app::content::templates::{MAX_FILES, generated_config, parse_yaml};
use crate::app::workspaces::{Creation, DEFAULT_RUNTIME};
use crate::error::{AppError, AppResult};

/// Deepest tree exported or imported.
const MAX_DEPTH: usize = 16;
/// Most workspaces in one bundle.
const MAX_NODES: usize = 500;
const SCHEMA: &str = "1.0";

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A skill's description: the first non-empty line after its front matter
/// that is not a heading.
fn skill_description(text: &str) -> String {
    let mut lines = text.lines().peekable();
    if lines.peek().map(|l| l.trim()) == Some("---") {
        lines.next();
        for l in lines.by_ref() {
            if l.trim() == "---" {
                break;
            }
        }
    }
    lines
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or_default()
        .to_string()
}

/// The `name:` of a skill's front matter.
fn skill_name(text: &str) -> Option<String> {
    let rest = text.strip_prefix("---")?;
    let front = rest.split("\n---").next()?;
    front.lines().find_map(|l| {
        l.trim()
            .strip_prefix("name:")
            .map(|n| n.trim().trim_matches('"').to_string())
            .filter(|n| !n.is_empty())
    })
}

/// A bundle (without children) from a `/configs` snapshot.
fn bundle_of(row: &WorkspaceRow, mut files: SeedFiles) -> Bundle {
    let system_prompt = files.remove("system-prompt.md").unwrap_or_default();
    let mut prompts = std::collections::BTreeMap::new();
    let mut model = String::new();
    if let Some(config) = files.remove("config.yaml") {
        if let Some(m) = parse_yaml(&config)
            .as_ref()
            .and_then(|c| c.get("model"))
            .and_then(Value::as_str)
        {
            model = m.to_string();
        }
        prompts.insert("config.yaml".to_string(), config);
    }
    let mut skills: std::collections::BTreeMap<String, BundleSkill> = Default::default();
    let mut rest = std::collections::BTreeMap::new();
    for (path, text) in files {
        match path.strip_prefix("skills/").and_then(|r| r.split_once('/')) {
            Some((id, rel)) if !id.is_empty() && !rel.is_empty() => {
                let skill = skills.entry(id.to_string()).or_insert_with(|| BundleSkill {
                    id: id.to_string(),
                    name: id.to_string(),
                    ..Default::default()
                });
                if rel == "SKILL.md" {
                    skill.description = skill_description(&text);
                    if let Some(n) = skill_name(&text) {
                        skill.name = n;
                    }
                }
                skill.files.insert(rel.to_string(), text);
            }
            _ => {
                rest.insert(path, text);
            }
        }
    }
    Bundle {
        schema: SCHEMA.into(),
        id: row.id.to_string(),
        name: row.name.clone(),
        description: row.role.clone().unwrap_or_default(),
        tier: row.tier,
        model,
        system_prompt,
        skills: skills.into_values().collect(),
        tools: Vec::new(),
        prompts,
        files: rest,
        sub_workspaces: Vec::new(),
        agent_card: row.agent_card.clone(),
        author: String::new(),
        version: "1.0.0".into(),
    }
}

/// The files of a bundle node's `/configs`, every path checked.
fn files_of(b: &Bundle) -> AppResult<SeedFiles> {
    let mut files = SeedFiles::new();
    let mut put = |path: String, text: &str| -> AppResult<()> {
        let clean = file_path(&path)?;
        files.insert(clean, text.to_string());
        Ok(())
    };
    for (name, text) in &b.prompts {
        put(name.clone(), text)?;
    }
    if !b.system_prompt.is_empty() {
        put("system-prompt.md".into(), &b.system_prompt)?;
    }
    for skill in &b.skills {
        let id = file_path(&skill.id)?;
        if id.contains('/') {
            return Err(AppError::invalid(format!(
                "invalid skill id {:?}",
                skill.id
            )));
        }
        for (rel, text) in &skill.files {
            put(format!("skills/{id}/{}", file_path(rel)?), text)?;
        }
    }
    for (path, text) in &b.files {
        put(path.clone(), text)?;
    }
    if files.len() > MAX_FILES {
        return Err(AppError::invalid(format!(
            "{}: too many files (limit {MAX_FILES})",
            b.name
        )));
    }
    Ok(files)
}

/// Check a whole bundle tree before anything is created.
fn check(b: &Bundle, depth: usize, nodes: &mut usize) -> AppResult<()> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(AppError::invalid(format!(
            "too many workspaces in the bundle (limit {MAX_NODES})"
        )));
    }
    if depth > MAX_DEPTH {
        return Err(AppError::invalid(format!(
            "the bundle is deeper than {MAX_DEPTH} levels"
        )));
    }
    if b.name.trim().is_empty() {
        return Err(AppError::invalid(
            "every workspace of a bundle needs a name",
        ));
    }
    files_of(b)?;
    b.sub_workspaces
        .iter()
        .try_for_each(|c| check(c, depth + 1, nodes))
}

impl App {
    /// `GET /bundles/export/:id`.
    pub async fn bundle_export(&self, _: AdminAccess, id: WorkspaceId) -> AppResult<Bundle> {
        let row = self.live_workspace_row(id.uuid()).await?;
        let mut nodes = 0;
        self.export_node(row, 0, &mut nodes).await.map_err(|e| {
            tracing::warn!(workspace_id = %id, error = %e, "bundle export failed");
            match e {
                AppError::NotFound(m) => AppError::NotFound(m),
                other => AppError::not_found(format!("bundle export failed: {other}")),
            }
        })
    }

    fn export_node<'a>(
        &'a self,
        row: WorkspaceRow,
        depth: usize,
        nodes: &'a mut usize,
    ) -> Boxed<'a, AppResult<Bundle>> {
        Box::pin(async move {
            *nodes += 1;
            if depth > MAX_DEPTH || *nodes > MAX_NODES {
                return Err(AppError::invalid("the tree is too large to export"));
            }
            let files = self.configs_snapshot(row.id).await?;
            let mut bundle = bundle_of(&row, files);
            let children = self
                .store
                .workspace_list_children(Some(row.id))
                .await
                .map_err(AppError::internal("query failed"))?;
            for child in children
                .into_iter()
                .filter(|c| c.status != WorkspaceStatus::Removed)
            {
                bundle
                    .sub_workspaces
                    .push(self.export_node(child, depth + 1, nodes).await?);
            }
            Ok(bundle)
        })
    }

    /// `POST /bundles/import`: the whole tree is checked first (400 and
    /// nothing created); then each workspace is created, parent first.
    pub async fn bundle_import(
        &self,
        admin: AdminAccess,
        bundle: Bundle,
    ) -> AppResult<BundleImported> {
        check(&bundle, 0, &mut 0)?;
        self.import_node(admin, &bundle, None).await
    }

    fn import_node<'a>(
        &'a self,
        admin: AdminAccess,
        b: &'a Bundle,
        parent: Option<Uuid>,
    ) -> Boxed<'a, AppResult<BundleImported>> {
        Box::pin(async move {
            let mut files = files_of(b)?;
            let runtime = files
                .get("config.yaml")
                .and_then(|c| parse_yaml(c))
                .and_then(|c| c.get("runtime").and_then(Value::as_str).map(str::to_string))
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_RUNTIME.to_string());
            let tier = crate::app::validation::validate_tier(i64::from(b.tier))?;
            let role = Some(b.description.clone()).filter(|d| !d.is_empty());
            if !files.contains_key("config.yaml") {
                let model = Some(b.model.as_str()).filter(|m| !m.is_empty());
                files.insert(
                    "config.yaml".into(),
                    generated_config(&b.name, role.as_deref(), model, tier, &runtime),
                );
            }
            let created = self
                .create_workspace(
                    admin,
                    CreateWorkspace {
                        name: b.name.trim().to_string(),
                        role,
                        tier: Some(tier),
                        runtime: Some(runtime),
                        parent_id: parent,
                        ..Default::default()
                    },
                    Creation {
                        files: Some(files),
                        secrets: Vec::new(),
                        source_bundle_id: Some(b.id.clone()).filter(|i| !i.is_empty()),
                    },
                )
                .await?;
            let mut children = Vec::new();
            for child in &b.sub_workspaces {
                match self.import_node(admin, child, Some(created.id)).await {
                    Ok(c) => children.push(c),
                    Err(e) => children.push(BundleImported {
                        workspace_id: None,
                        name: child.name.clone(),
                        status: "failed".into(),
                        error: Some(e.to_string()),
                        children: Vec::new(),
                    }),
                }
            }
            Ok(BundleImported {
                workspace_id: Some(created.id),
                name: b.name.trim().to_string(),
                status: created.status.as_str().to_string(),
                error: None,
                children,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skill_descriptions_skip_front_matter_and_headings() {
        let text = "---\nname: Web Search\n---\n\n# Search\n\nFinds pages.\nMore.";
        assert_eq!(skill_description(text), "Finds pages.");
        assert_eq!(skill_name(text).as_deref(), Some("Web Search"));
        assert_eq!(skill_description("plain first line"), "plain first line");
        assert_eq!(skill_name("no front matter"), None);
    }

    #[test]
    fn bundle_paths_are_checked() {
        let mut b = Bundle {
            name: "x".into(),
            ..Default::default()
        };
        b.skills.push(BundleSkill {
            id: "s".into(),
            files: [("../../etc/passwd".to_string(), "x".to_string())].into(),
            ..Default::default()
        });
        assert!(check(&b, 0, &mut 0).is_err());
        b.skills[0].files = [("SKILL.md".to_string(), "x".to_string())].into();
        b.skills[0].id = "../s".into();
        assert!(check(&b, 0, &mut 0).is_err());
        b.skills[0].id = "s".into();
        b.files.insert("/abs".into(), "x".into());
        assert!(check(&b, 0, &mut 0).is_err());
        b.files.clear();
        assert!(check(&b, 0, &mut 0).is_ok());
        assert_eq!(
            files_of(&b).unwrap().keys().collect::<Vec<_>>(),
            ["skills/s/SKILL.md"]
        );
    }
}
