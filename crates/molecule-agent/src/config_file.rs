//! The shape of `config.yaml` as this agent reads it. Every key is optional
//! and unknown keys are ignored, so a workspace template's config.yaml
//! written for another runtime still loads; only the keys below mean
//! anything here:
//!
//! ```yaml
//! name: Researcher
//! description: Finds things out.
//! executor: command            # echo | command | openai
//! model: gpt-4o-mini           # openai model when openai.model is unset
//! system_prompt: Be brief.
//! skills: [search, {id: summarise, name: Summarise, description: ..., tags: [text]}]
//! echo: {delay_ms: 100}
//! command: {program: /usr/bin/python3, args: [agent.py], timeout_seconds: 60}
//! openai: {base_url: "http://llm:8080/v1", model: local, timeout_seconds: 300, ask_tool: true}
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::AgentError;
use crate::config::Skill;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FileConfig {
    pub name: Option<String>,
    pub description: Option<String>,
    pub executor: Option<String>,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub skills: Option<Vec<SkillEntry>>,
    pub echo: Option<EchoSection>,
    pub command: Option<CommandSection>,
    pub openai: Option<OpenAiSection>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EchoSection {
    pub delay_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CommandSection {
    pub program: Option<String>,
    pub args: Option<Vec<String>>,
    pub timeout_seconds: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct OpenAiSection {
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub timeout_seconds: Option<f64>,
    pub ask_tool: Option<bool>,
}

/// A skill given by name only, or in full.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SkillEntry {
    Name(String),
    Full {
        id: Option<String>,
        name: Option<String>,
        description: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        examples: Vec<String>,
    },
}

impl SkillEntry {
    /// The card entry; missing fields fall back to the id or name.
    pub fn to_skill(&self) -> Skill {
        match self {
            SkillEntry::Name(name) => Skill {
                id: name.clone(),
                name: name.clone(),
                description: name.clone(),
                tags: vec![],
                examples: vec![],
            },
            SkillEntry::Full {
                id,
                name,
                description,
                tags,
                examples,
            } => {
                let id = id
                    .clone()
                    .or(name.clone())
                    .unwrap_or_else(|| "skill".into());
                let name = name.clone().unwrap_or_else(|| id.clone());
                Skill {
                    description: description.clone().unwrap_or_else(|| name.clone()),
                    id,
                    name,
                    tags: tags.clone(),
                    examples: examples.clone(),
                }
            }
        }
    }
}

impl FileConfig {
    /// Reads `path`; an absent file is an empty config, anything else that
    /// goes wrong is an error naming the file.
    pub fn load(path: &Path) -> Result<FileConfig, AgentError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
            Err(e) => {
                return Err(AgentError::Config(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        FileConfig::parse(&text)
            .map_err(|e| AgentError::Config(format!("{} is not valid: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<FileConfig, String> {
        if text.trim().is_empty() {
            return Ok(FileConfig::default());
        }
        // `null` (a file of comments only) is an empty config too.
        serde_saphyr::from_str::<Option<FileConfig>>(text)
            .map(Option::unwrap_or_default)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let text = r#"
name: Researcher
description: |
  Finds things out.
executor: command
model: gpt-4o-mini
runtime: langgraph            # unknown keys are ignored
tier: 2
skills:
  - search
  - id: summarise
    name: Summarise
    description: Shortens text.
    tags: [text, nlp]
    examples: ["summarise this"]
  - name: only-name
command:
  program: /usr/bin/python3
  args: [agent.py, "--flag"]
  timeout_seconds: 1.5
echo: {delay_ms: 100}
openai: {base_url: "http://llm:8080/v1", model: local}
"#;
        let file = FileConfig::parse(text).expect("valid");
        assert_eq!(file.name.as_deref(), Some("Researcher"));
        assert_eq!(file.description.as_deref(), Some("Finds things out.\n"));
        assert_eq!(file.executor.as_deref(), Some("command"));
        let command = file.command.expect("command section");
        assert_eq!(command.program.as_deref(), Some("/usr/bin/python3"));
        assert_eq!(command.args, Some(vec!["agent.py".into(), "--flag".into()]));
        assert_eq!(command.timeout_seconds, Some(1.5));
        assert_eq!(file.echo.and_then(|e| e.delay_ms), Some(100));
        assert_eq!(file.openai.and_then(|o| o.model).as_deref(), Some("local"));

        let skills: Vec<Skill> = file
            .skills
            .unwrap_or_default()
            .iter()
            .map(SkillEntry::to_skill)
            .collect();
        assert_eq!(skills.len(), 3);
        assert_eq!(
            (skills[0].id.as_str(), skills[0].description.as_str()),
            ("search", "search")
        );
        assert_eq!(skills[1].id, "summarise");
        assert_eq!(skills[1].tags, ["text", "nlp"]);
        assert_eq!(skills[1].examples, ["summarise this"]);
        assert_eq!(
            (skills[2].id.as_str(), skills[2].name.as_str()),
            ("only-name", "only-name")
        );
    }

    #[test]
    fn empty_and_comment_only_files_are_empty_configs() {
        for text in ["", "   \n", "# nothing here\n", "~\n"] {
            let file = FileConfig::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(file.executor.is_none() && file.name.is_none(), "{text:?}");
        }
    }

    #[test]
    fn wrong_shapes_are_errors() {
        for text in [
            "executor: [a, b]",
            "command: 5",
            "echo: {delay_ms: -1}",
            ": : :\n  - ]",
        ] {
            assert!(
                FileConfig::parse(text).is_err(),
                "{text:?} should not parse"
            );
        }
    }
}
