//! The shape of an org template (`org.yaml`, or the same inline) and the
//! `.env` files beside it.

use std::collections::BTreeMap;
use std::path::Path;

use molecule_types::dto::CanvasPosition;
use serde::Deserialize;

use crate::error::{AppError, AppResult};

/// An `org.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OrgTemplate {
    pub name: String,
    pub description: String,
    pub defaults: OrgDefaults,
    pub workspaces: Vec<OrgNode>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OrgDefaults {
    pub runtime: Option<String>,
    pub tier: Option<i64>,
    pub model: Option<String>,
    pub plugins: Vec<String>,
    pub initial_prompt: Option<String>,
    pub initial_prompt_file: Option<String>,
    pub idle_prompt: Option<String>,
    pub idle_prompt_file: Option<String>,
    pub idle_interval_seconds: Option<u64>,
    pub category_routing: BTreeMap<String, Vec<String>>,
}

/// One workspace of the tree.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OrgNode {
    pub name: String,
    pub role: Option<String>,
    pub runtime: Option<String>,
    pub tier: Option<i64>,
    pub template: Option<String>,
    pub files_dir: Option<String>,
    pub system_prompt: Option<String>,
    pub model: Option<String>,
    pub workspace_dir: Option<String>,
    pub workspace_access: Option<String>,
    pub plugins: Vec<String>,
    pub initial_prompt: Option<String>,
    pub initial_prompt_file: Option<String>,
    pub idle_prompt: Option<String>,
    pub idle_prompt_file: Option<String>,
    pub idle_interval_seconds: Option<u64>,
    pub category_routing: BTreeMap<String, Vec<String>>,
    pub schedules: Vec<OrgSchedule>,
    pub channels: Vec<OrgChannel>,
    pub external: bool,
    pub url: Option<String>,
    pub canvas: Option<CanvasPosition>,
    pub children: Vec<OrgNode>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OrgSchedule {
    pub name: String,
    pub cron_expr: String,
    pub timezone: Option<String>,
    pub prompt: Option<String>,
    pub prompt_file: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OrgChannel {
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: Option<bool>,
}

pub(super) fn count(nodes: &[OrgNode]) -> usize {
    nodes.iter().map(|n| 1 + count(&n.children)).sum()
}

/// `KEY=VALUE` lines: `#` comments, optional `export `, surrounding quotes
/// stripped, empty values skipped.
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let mut v = v.trim();
        for q in ['"', '\''] {
            if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
                v = &v[1..v.len() - 1];
            }
        }
        if !k.is_empty() && !v.is_empty() {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

/// The `org.yaml` (or `org.yml`) of a directory; `None` when it has
/// neither; 400 when it does not parse.
pub(super) async fn read_org_yaml(dir: &Path) -> AppResult<Option<OrgTemplate>> {
    for name in ["org.yaml", "org.yml"] {
        let path = dir.join(name);
        if !tokio::fs::symlink_metadata(&path)
            .await
            .is_ok_and(|m| m.is_file())
        {
            continue;
        }
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| AppError::invalid(format!("{name} is not readable: {e}")))?;
        return serde_saphyr::from_str::<OrgTemplate>(&text)
            .map(Some)
            .map_err(|e| AppError::invalid(format!("invalid {name}: {e}")));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_parse_like_shells_write_them() {
        let text =
            "# comment\nA=1\nexport B=\"two words\"\nC='x'\nEMPTY=\n  D = spaced  \nnot a pair\n";
        assert_eq!(
            parse_env(text),
            [
                ("A".to_string(), "1".to_string()),
                ("B".into(), "two words".into()),
                ("C".into(), "x".into()),
                ("D".into(), "spaced".into()),
            ]
        );
    }

    #[test]
    fn org_yaml_reads_every_field() {
        let yaml = "name: Acme\ndefaults: {tier: 3, plugins: [a, b], category_routing: {bug: [dev]}}\n\
                    workspaces:\n  - name: CEO\n    schedules: [{name: s, cron_expr: '0 9 * * *', prompt_file: p.md}]\n\
                    \x20   channels: [{type: telegram, config: {token: x}}]\n    canvas: {x: 1, y: 2}\n\
                    \x20   children:\n      - {name: Dev, plugins: ['!a'], external: true, url: 'http://x'}\n";
        let org: OrgTemplate = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(org.defaults.tier, Some(3));
        assert_eq!(
            org.workspaces[0].schedules[0].prompt_file.as_deref(),
            Some("p.md")
        );
        assert_eq!(org.workspaces[0].channels[0].kind, "telegram");
        assert_eq!(org.workspaces[0].children[0].plugins, ["!a"]);
        assert!(org.workspaces[0].children[0].external);
        assert_eq!(count(&org.workspaces), 2);
    }
}
