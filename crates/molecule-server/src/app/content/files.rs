//! Files in a workspace (api-contract §5.14): list, read, write, delete and
//! replace, and the shared context. Reads look at any root (`/configs`,
//! `/workspace`, `/home`, `/plugins`); writes and deletes only at
//! `/configs`. The provisioner copies in and out (Docker's archive API, the
//! workspace's volume through a short-lived container of the agent image,
//! or the local backend's directory); nothing runs a shell.
//!
//! Before a workspace's first start its `/configs` is its seed (the files
//! resolved at creation): reads and writes then go to the seed, so an
//! operator can look at and adjust what the runtime will start with.

use molecule_provisioner::{FileRoot, ListDepth, Observation, ProvisionError};
use molecule_store::SeedFiles;
use molecule_types::content::{FileContent, FileEntryView, FilesReplaced, SharedFile};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::app::App;
use crate::app::auth::WorkspaceAccess;
use crate::app::content::paths::{clean_relative, file_path};
use crate::app::content::templates::{MAX_FILE_BYTES, MAX_FILES, SKIPPED_NAMES, parse_yaml};
use crate::error::{AppError, AppResult};

/// Most files a shared-context list may name.
const MAX_SHARED: usize = 50;

fn from_provisioner(what: &'static str) -> impl Fn(ProvisionError) -> AppError {
    move |e| match e {
        ProvisionError::BadPath(m) => AppError::invalid(m),
        ProvisionError::FileTooLarge { limit } => {
            AppError::TooLarge(format!("file is larger than {limit} bytes"))
        }
        ProvisionError::Unavailable(_) => AppError::Unavailable("runtime backend unavailable"),
        other => AppError::Internal {
            public: what,
            cause: other.to_string(),
        },
    }
}

/// Where the files of a workspace are to be found right now.
enum Files {
    /// Its runtime's (the provisioner answers).
    Runtime,
    /// Not started yet: its seed.
    Seed(molecule_store::Seed),
    /// Neither (an external workspace, or no runtime backend and no seed).
    None,
}

/// The entries of `files` under `dir`, at most `depth` levels down, with
/// their directories, as the provisioner would list them.
fn list_seed(files: &SeedFiles, dir: &str, depth: u32) -> Vec<FileEntryView> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut out: BTreeMap<String, FileEntryView> = BTreeMap::new();
    for (path, content) in files {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| SKIPPED_NAMES.contains(p)) {
            continue;
        }
        for end in 1..=parts.len().min(depth as usize) {
            let rel = parts[..end].join("/");
            let dir = end < parts.len();
            out.entry(rel.clone()).or_insert(FileEntryView {
                path: rel,
                size: if dir { 0 } else { content.len() as u64 },
                dir,
            });
        }
    }
    out.into_values().collect()
}

impl App {
    /// The seed counts until a runtime exists: a start in progress wrote it
    /// into the runtime before starting it, and clears it a moment after
    /// (an agent may register in between), so once the backend reports a
    /// runtime its files are the truth.
    async fn files_of(&self, ws: uuid::Uuid) -> AppResult<Files> {
        let row = self.live_workspace_row(ws).await?;
        if row.runtime.is_external() {
            return Ok(Files::None);
        }
        let seed = self
            .store
            .seed_get(ws)
            .await
            .map_err(AppError::internal("lookup failed"))?;
        let Some(prov) = self.provisioner.as_ref() else {
            return Ok(seed.map_or(Files::None, Files::Seed));
        };
        match seed {
            None => Ok(Files::Runtime),
            Some(seed) => match prov.inspect(ws).await {
                Observation::Running | Observation::Exited { .. } => Ok(Files::Runtime),
                Observation::NotFound => Ok(Files::Seed(seed)),
                Observation::Unknown(_) => {
                    Err(AppError::Unavailable("runtime backend unavailable"))
                }
            },
        }
    }

    /// `GET /workspaces/:id/files`.
    pub async fn files_list(
        &self,
        access: WorkspaceAccess,
        root: Option<&str>,
        path: Option<&str>,
        depth: Option<&str>,
    ) -> AppResult<Vec<FileEntryView>> {
        let root = parse_root(root)?;
        let dir = clean_relative(path.unwrap_or(""))?;
        let depth = match depth.map(str::trim).filter(|d| !d.is_empty()) {
            None => ListDepth::CHILDREN,
            Some(d) => d
                .parse::<u32>()
                .ok()
                .and_then(ListDepth::new)
                .ok_or_else(|| {
                    AppError::invalid(format!("depth must be between 1 and {}", ListDepth::MAX))
                })?,
        };
        match self.files_of(access.uuid()).await? {
            Files::Seed(seed) if root == FileRoot::Configs => {
                Ok(list_seed(&seed.files, &dir, depth.get()))
            }
            Files::Seed(_) | Files::None => Ok(Vec::new()),
            Files::Runtime => {
                let prov = self.provisioner()?;
                let entries = prov
                    .list_files(access.uuid(), root, &dir, depth)
                    .await
                    .map_err(from_provisioner("failed to list files"))?;
                Ok(entries
                    .into_iter()
                    .map(|e| FileEntryView {
                        path: e.path,
                        size: e.size,
                        dir: e.dir,
                    })
                    .collect())
            }
        }
    }

    /// The text of `root/path`, `None` when there is no such file.
    async fn file_text(
        &self,
        ws: uuid::Uuid,
        root: FileRoot,
        path: &str,
    ) -> AppResult<Option<String>> {
        match self.files_of(ws).await? {
            Files::Seed(seed) if root == FileRoot::Configs => Ok(seed.files.get(path).cloned()),
            Files::Seed(_) | Files::None => Ok(None),
            Files::Runtime => {
                let prov = self.provisioner()?;
                let bytes = prov
                    .read_file(ws, root, path, MAX_FILE_BYTES as u64)
                    .await
                    .map_err(from_provisioner("failed to read file"))?;
                Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
            }
        }
    }

    /// `GET /workspaces/:id/files/*path`.
    pub async fn file_read(
        &self,
        access: WorkspaceAccess,
        path: &str,
        root: Option<&str>,
    ) -> AppResult<FileContent> {
        let root = parse_root(root)?;
        let path = file_path(path)?;
        let content = self
            .file_text(access.uuid(), root, &path)
            .await?
            .ok_or_else(|| AppError::not_found("file not found"))?;
        Ok(FileContent {
            size: content.len() as u64,
            path,
            content,
        })
    }

    /// Write files into `/configs` (its seed before the first start):
    /// where they went.
    async fn write_configs(&self, ws: uuid::Uuid, files: SeedFiles) -> AppResult<&'static str> {
        match self.files_of(ws).await? {
            Files::Seed(mut seed) => {
                seed.files.extend(files);
                self.store
                    .seed_put(ws, &seed.files, self.now())
                    .await
                    .map_err(AppError::internal("failed to write file"))?;
                Ok("seed")
            }
            Files::None => Err(AppError::invalid(
                "this workspace has no files the platform can write (external, or no runtime backend)",
            )),
            Files::Runtime => {
                let prov = self.provisioner()?;
                let files: Vec<(String, Vec<u8>)> = files
                    .into_iter()
                    .map(|(p, c)| (p, c.into_bytes()))
                    .collect();
                let source = prov
                    .write_files(ws, &files)
                    .await
                    .map_err(from_provisioner("failed to write file"))?;
                Ok(source.as_str())
            }
        }
    }

    /// `PUT /workspaces/:id/files/*path`.
    pub async fn file_write(
        &self,
        access: WorkspaceAccess,
        path: &str,
        content: String,
    ) -> AppResult<String> {
        let path = file_path(path)?;
        if content.len() > MAX_FILE_BYTES {
            return Err(AppError::TooLarge(format!(
                "file is larger than {MAX_FILE_BYTES} bytes"
            )));
        }
        let files = BTreeMap::from([(path.clone(), content)]);
        self.write_configs(access.uuid(), files).await?;
        Ok(path)
    }

    /// `PUT /workspaces/:id/files`: merge-write many files.
    pub async fn files_replace(
        &self,
        access: WorkspaceAccess,
        files: BTreeMap<String, String>,
    ) -> AppResult<FilesReplaced> {
        if files.is_empty() {
            return Err(AppError::invalid("files is required"));
        }
        if files.len() > MAX_FILES {
            return Err(AppError::invalid(format!(
                "too many files (limit {MAX_FILES})"
            )));
        }
        let mut clean = BTreeMap::new();
        for (path, content) in files {
            let p = file_path(&path)?;
            if content.len() > MAX_FILE_BYTES {
                return Err(AppError::TooLarge(format!(
                    "{p} is larger than {MAX_FILE_BYTES} bytes"
                )));
            }
            clean.insert(p, content);
        }
        let n = clean.len();
        let source = self.write_configs(access.uuid(), clean).await?;
        Ok(FilesReplaced {
            status: "replaced".into(),
            workspace: access.uuid(),
            files: n,
            source: source.into(),
        })
    }

    /// `DELETE /workspaces/:id/files/*path`: recursively; an empty path
    /// empties `/configs`.
    pub async fn file_delete(&self, access: WorkspaceAccess, path: &str) -> AppResult<String> {
        let path = clean_relative(path)?;
        let ws = access.uuid();
        match self.files_of(ws).await? {
            Files::Seed(mut seed) => {
                let prefix = format!("{path}/");
                seed.files
                    .retain(|p, _| !(path.is_empty() || *p == path || p.starts_with(&prefix)));
                self.store
                    .seed_put(ws, &seed.files, self.now())
                    .await
                    .map_err(AppError::internal("failed to delete file"))?;
            }
            Files::None => {
                return Err(AppError::invalid(
                    "this workspace has no files the platform can delete (external, or no runtime backend)",
                ));
            }
            Files::Runtime => {
                let prov = self.provisioner()?;
                prov.delete_path(ws, &path)
                    .await
                    .map_err(from_provisioner("failed to delete file"))?;
            }
        }
        Ok(path)
    }

    /// Every file of a workspace's `/configs` (at most [`MAX_FILES`], each
    /// at most [`MAX_FILE_BYTES`], five levels deep), as text.
    pub(crate) async fn configs_snapshot(&self, ws: uuid::Uuid) -> AppResult<SeedFiles> {
        match self.files_of(ws).await? {
            Files::Seed(seed) => Ok(seed.files),
            Files::None => Ok(SeedFiles::new()),
            Files::Runtime => {
                let prov = self.provisioner()?;
                let deepest = ListDepth::new(ListDepth::MAX).unwrap_or(ListDepth::CHILDREN);
                let entries = prov
                    .list_files(ws, FileRoot::Configs, "", deepest)
                    .await
                    .map_err(from_provisioner("failed to list files"))?;
                let mut out = SeedFiles::new();
                for e in entries.into_iter().filter(|e| !e.dir) {
                    if out.len() >= MAX_FILES {
                        return Err(AppError::invalid(format!(
                            "more than {MAX_FILES} files in /configs"
                        )));
                    }
                    let bytes = prov
                        .read_file(ws, FileRoot::Configs, &e.path, MAX_FILE_BYTES as u64)
                        .await
                        .map_err(from_provisioner("failed to read file"))?;
                    if let Some(b) = bytes {
                        out.insert(e.path, String::from_utf8_lossy(&b).into_owned());
                    }
                }
                Ok(out)
            }
        }
    }

    /// `GET /workspaces/:id/shared-context`: the files `config.yaml` lists
    /// under `shared_context`, each read from `/configs`; unreadable or
    /// unsafe entries are skipped.
    pub async fn shared_context(&self, access: WorkspaceAccess) -> AppResult<Vec<SharedFile>> {
        let ws = access.uuid();
        let Some(config) = self.file_text(ws, FileRoot::Configs, "config.yaml").await? else {
            return Ok(Vec::new());
        };
        let Some(Value::Array(list)) =
            parse_yaml(&config).and_then(|c| c.get("shared_context").cloned())
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in list.iter().take(MAX_SHARED) {
            let Some(raw) = entry.as_str() else { continue };
            let Ok(path) = file_path(raw) else { continue };
            match self.file_text(ws, FileRoot::Configs, &path).await {
                Ok(Some(content)) => out.push(SharedFile { path, content }),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(workspace_id = %ws, file = %path, error = %e, "shared context file skipped")
                }
            }
        }
        Ok(out)
    }
}

fn parse_root(root: Option<&str>) -> AppResult<FileRoot> {
    match root.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(FileRoot::Configs),
        Some(r) => r
            .parse()
            .map_err(|e: molecule_provisioner::UnknownFileRoot| AppError::invalid(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_lists_like_a_directory() {
        let files: SeedFiles = [
            ("config.yaml", "a"),
            ("skills/search/SKILL.md", "bb"),
            ("skills/search/.git/x", "c"),
            ("prompts/p.md", "ddd"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let paths = |v: Vec<FileEntryView>| -> Vec<(String, bool)> {
            v.into_iter().map(|e| (e.path, e.dir)).collect()
        };
        assert_eq!(
            paths(list_seed(&files, "", 1)),
            [
                ("config.yaml".to_string(), false),
                ("prompts".into(), true),
                ("skills".into(), true)
            ]
        );
        assert_eq!(
            paths(list_seed(&files, "skills", 2)),
            [
                ("search".to_string(), true),
                ("search/SKILL.md".into(), false)
            ]
        );
        assert_eq!(list_seed(&files, "prompts", 1)[0].size, 3);
    }
}
