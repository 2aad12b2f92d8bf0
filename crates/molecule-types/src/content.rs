//! Wire DTOs of an organisation's content: agent records (api-contract
//! §5.13), templates and files (§5.14), bundles and org import (§5.16) and
//! the canvas viewport (§5.18).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST` / `PATCH /workspaces/:id/agent`. A missing `model` reads as
/// empty, which the server answers with a 400.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentModel {
    #[serde(default)]
    pub model: String,
}

/// `201` of an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAssigned {
    pub agent_id: Uuid,
    pub model: String,
}

/// `200` of a replacement: the new agent, and the model it replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReplaced {
    pub agent_id: Uuid,
    pub model: String,
    pub old_model: String,
}

/// `200` of a removal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRemoved {
    pub status: String,
    pub agent_id: Uuid,
}

/// `POST /workspaces/:id/agent/move`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MoveAgent {
    #[serde(default)]
    pub target_workspace_id: String,
}

/// `200` of a move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentMoved {
    pub agent_id: Uuid,
    pub model: String,
    pub from_workspace: Uuid,
    pub to_workspace: Uuid,
}

/// The canvas viewport: `GET` answers it, `PUT` sends it (a missing `x` or
/// `y` is 0, a missing `zoom` 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ViewportView {
    #[serde(default)]
    pub x: f64,
    #[serde(default)]
    pub y: f64,
    #[serde(default = "unit_zoom")]
    pub zoom: f64,
}

impl Default for ViewportView {
    fn default() -> Self {
        Self {
            x: 0.0,
            y: 0.0,
            zoom: 1.0,
        }
    }
}

fn unit_zoom() -> f64 {
    1.0
}

/// A template as `GET /templates` lists it (from its `config.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TemplateSummary {
    /// The template's directory name.
    pub id: String,
    pub name: String,
    pub description: String,
    pub tier: i64,
    pub model: String,
    /// Skill ids (a `skills` entry's `id`, else its `name`, else the
    /// entry itself when it is a plain string).
    pub skills: Vec<String>,
    pub skill_count: usize,
}

/// `POST /templates/import`: a name and its files (relative path →
/// contents). A missing field reads as empty, which the server answers
/// with a 400.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportTemplate {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
}

/// `201` of a template import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateImported {
    pub status: String,
    pub id: String,
    pub name: String,
}

/// One entry of `GET /workspaces/:id/files`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntryView {
    pub path: String,
    pub size: u64,
    pub dir: bool,
}

/// `GET /workspaces/:id/files/*path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileContent {
    pub path: String,
    pub content: String,
    pub size: u64,
}

/// `PUT /workspaces/:id/files/*path`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteFile {
    #[serde(default)]
    pub content: String,
}

/// `PUT /workspaces/:id/files`: relative path → contents, merged into
/// `/configs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplaceFiles {
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
}

/// `200` of `PUT /workspaces/:id/files`. `source`: `container` (the
/// workspace's container), `volume` (its volume, the container being gone),
/// `local` (the local backend's directory) or `seed` (not started yet: the
/// files it will start with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilesReplaced {
    pub status: String,
    pub workspace: Uuid,
    pub files: usize,
    pub source: String,
}

/// One file of `GET /workspaces/:id/shared-context`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedFile {
    pub path: String,
    pub content: String,
}

/// A child created by `POST /workspaces/:id/expand`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpandedChild {
    pub id: Uuid,
    pub name: String,
    pub role: Option<String>,
}

/// `200` of `POST /workspaces/:id/expand`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expanded {
    pub status: String,
    pub children: Vec<ExpandedChild>,
}

/// `200` of `POST /workspaces/:id/collapse`: the names of every workspace
/// removed (the whole subtree below it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collapsed {
    pub status: String,
    pub removed: Vec<String>,
}

/// `POST /org/import`: an org directory inside the org templates directory,
/// or an inline template (the shape of an `org.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgImport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<serde_json::Value>,
}

/// Something an import did not do for a workspace, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub workspace: String,
    /// The plugin's name or the channel's type.
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
}

/// A workspace an org import created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgWorkspace {
    pub id: Uuid,
    pub name: String,
    pub tier: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins_skipped: Vec<Skipped>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels_skipped: Vec<Skipped>,
}

/// `201` (everything) or `207` (up to the node named in `error`) of an org
/// import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgImported {
    pub org: String,
    pub workspaces: Vec<OrgWorkspace>,
    pub count: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An org template as `GET /org/templates` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgTemplateSummary {
    pub dir: String,
    pub name: String,
    pub description: String,
    /// Workspaces in the whole tree.
    pub workspaces: usize,
}

/// A skill of a bundle: its files under `skills/<id>/`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BundleSkill {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
}

/// A workspace and its subtree as one JSON document (`.bundle.json`):
/// `GET /bundles/export/:id` answers it, `POST /bundles/import` takes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    #[serde(default)]
    pub schema: String,
    /// The exported workspace's id (the new ones record it as
    /// `source_bundle_id`).
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// The workspace's role.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tier: i32,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub system_prompt: String,
    #[serde(default)]
    pub skills: Vec<BundleSkill>,
    #[serde(default)]
    pub tools: Vec<serde_json::Value>,
    /// `config.yaml` (and other prompt files) by name.
    #[serde(default)]
    pub prompts: std::collections::BTreeMap<String, String>,
    /// Every other file of `/configs` (an addition: the reference dropped
    /// them).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub files: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub sub_workspaces: Vec<Bundle>,
    #[serde(default)]
    pub agent_card: Option<serde_json::Value>,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub version: String,
}

/// `201` of `POST /bundles/import`, for each workspace of the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleImported {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<Uuid>,
    pub name: String,
    /// `provisioning` (or `online` for a runtime the platform does not
    /// run), or `failed` with `error`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<BundleImported>,
}
