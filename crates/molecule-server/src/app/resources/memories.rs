//! Workspace memory (api-contract §5.9, data-and-lifecycle §4.7): the
//! key/value store with TTL, and scoped memories (LOCAL / TEAM / GLOBAL)
//! with namespaces and full-text search. The visibility rule is computed
//! here (which authors a scope may read); the store filters and ranks.

use chrono::Duration;
use molecule_store::{MemoryQuery, MemoryRow, MemoryText};
use molecule_types::WorkspaceStatus;
use molecule_types::workspace_data::{
    CommitMemory, KeyStatus, Memory, MemoryCommitted, MemoryEntry, MemorySearch, SetMemoryEntry,
};
use uuid::Uuid;

use crate::app::App;
use crate::app::auth::WorkspaceAccess;
use crate::error::{AppError, AppResult};

/// Rows a search returns.
const SEARCH_LIMIT: i64 = 50;
const MAX_NAMESPACE: usize = 50;
const MAX_CONTENT: usize = 64 * 1024;

fn entry_view(e: molecule_store::MemoryEntryRow) -> MemoryEntry {
    MemoryEntry {
        key: e.key,
        value: e.value,
        expires_at: e.expires_at,
        updated_at: e.updated_at,
    }
}

fn memory_view(m: &MemoryRow) -> Memory {
    Memory {
        id: m.id,
        workspace_id: m.workspace_id,
        content: m.content.clone(),
        scope: m.scope.clone(),
        namespace: m.namespace.clone(),
        created_at: m.created_at,
    }
}

impl App {
    pub async fn memory_kv_list(&self, access: WorkspaceAccess) -> AppResult<Vec<MemoryEntry>> {
        let ws = access.uuid();
        let rows = self
            .store
            .memory_kv_list(ws, self.now())
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows.into_iter().map(entry_view).collect())
    }

    pub async fn memory_kv_get(
        &self,
        access: WorkspaceAccess,
        key: &str,
    ) -> AppResult<MemoryEntry> {
        let ws = access.uuid();
        self.store
            .memory_kv_get(ws, key, self.now())
            .await
            .map_err(AppError::internal("query failed"))?
            .map(entry_view)
            .ok_or_else(|| AppError::not_found("key not found"))
    }

    pub async fn memory_kv_set(
        &self,
        access: WorkspaceAccess,
        req: SetMemoryEntry,
    ) -> AppResult<KeyStatus> {
        let ws = access.uuid();
        crate::app::validation::validate_memory_key(&req.key)?;
        let value = req.value;
        if value.is_null() {
            return Err(AppError::invalid("value is required"));
        }
        let now = self.now();
        let expires_at = match req.ttl_seconds {
            None => None,
            Some(t) if t > 0 && t <= 10 * 365 * 86_400 => Some(now + Duration::seconds(t)),
            Some(_) => {
                return Err(AppError::invalid(
                    "ttl_seconds must be a positive number of seconds (at most ten years)",
                ));
            }
        };
        self.store
            .memory_kv_set(ws, &req.key, &value, expires_at, now)
            .await
            .map_err(AppError::internal("failed to save memory"))?;
        Ok(KeyStatus {
            status: "ok".into(),
            key: req.key,
            scope: None,
        })
    }

    pub async fn memory_kv_delete(&self, access: WorkspaceAccess, key: &str) -> AppResult<()> {
        let ws = access.uuid();
        self.store
            .memory_kv_delete(ws, key)
            .await
            .map_err(AppError::internal("failed to delete memory"))?;
        Ok(())
    }

    pub async fn memory_commit(
        &self,
        access: WorkspaceAccess,
        req: CommitMemory,
    ) -> AppResult<MemoryCommitted> {
        let ws = access.uuid();
        if req.content.trim().is_empty() {
            return Err(AppError::invalid("content is required"));
        }
        if req.content.len() > MAX_CONTENT {
            return Err(AppError::invalid("content must be at most 65536 bytes"));
        }
        let scope = req.scope.as_str();
        if !matches!(scope, "LOCAL" | "TEAM" | "GLOBAL") {
            return Err(AppError::invalid("scope must be LOCAL, TEAM or GLOBAL"));
        }
        let namespace = req
            .namespace
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "general".into());
        if namespace.chars().count() > MAX_NAMESPACE {
            return Err(AppError::invalid("namespace must be at most 50 characters"));
        }
        if scope == "GLOBAL" {
            let parent = self
                .store
                .workspace_parent(ws)
                .await
                .map_err(AppError::internal("query failed"))?;
            if matches!(parent, Some(Some(_))) {
                return Err(AppError::forbidden(
                    "only root workspaces can write GLOBAL memories",
                ));
            }
        }
        let row = MemoryRow {
            id: Uuid::new_v4(),
            workspace_id: ws,
            content: req.content,
            scope: scope.to_string(),
            namespace: namespace.clone(),
            created_at: self.now(),
        };
        self.store
            .memory_insert(&row)
            .await
            .map_err(AppError::internal("failed to save memory"))?;
        Ok(MemoryCommitted {
            id: row.id,
            scope: scope.to_string(),
            namespace,
        })
    }

    /// The authors whose TEAM memories `ws` reads: with a parent P, P and
    /// every non-removed child of P (its siblings and itself); as a root,
    /// itself and its non-removed direct children.
    async fn team_authors(&self, ws: Uuid) -> AppResult<Vec<Uuid>> {
        let me = self.workspace_row(ws).await?;
        let mut authors = Vec::new();
        let head = match me.parent_id {
            Some(p) => {
                if let Ok(Some(parent)) = self.store.workspace_get(p).await
                    && parent.status != WorkspaceStatus::Removed
                {
                    authors.push(p);
                }
                p
            }
            None => {
                authors.push(ws);
                ws
            }
        };
        let children = self
            .store
            .workspace_list_children(Some(head))
            .await
            .map_err(AppError::internal("query failed"))?;
        authors.extend(children.into_iter().map(|c| c.id));
        if !authors.contains(&ws) {
            authors.push(ws);
        }
        Ok(authors)
    }

    pub async fn memory_search(
        &self,
        access: WorkspaceAccess,
        q: MemorySearch,
    ) -> AppResult<Vec<Memory>> {
        let ws = access.uuid();
        let (scope, authors) = match q.scope.as_deref() {
            Some("LOCAL") => (Some("LOCAL".to_string()), Some(vec![ws])),
            Some("TEAM") => (Some("TEAM".to_string()), Some(self.team_authors(ws).await?)),
            Some("GLOBAL") => (Some("GLOBAL".to_string()), None),
            // Absent (or unknown): the caller's own rows of every scope.
            _ => (None, Some(vec![ws])),
        };
        let text = q.q.as_deref().map(str::trim).unwrap_or("");
        let text = match text.len() {
            0 => MemoryText::All,
            1 => MemoryText::Substring(text.to_string()),
            _ => MemoryText::FullText(text.to_string()),
        };
        let query = MemoryQuery {
            scope,
            authors,
            namespace: q.namespace.filter(|n| !n.is_empty()),
            text,
            limit: SEARCH_LIMIT,
        };
        let rows = self
            .store
            .memory_search(&query)
            .await
            .map_err(AppError::internal("query failed"))?;
        Ok(rows.iter().map(memory_view).collect())
    }

    pub async fn memory_delete(&self, access: WorkspaceAccess, id: Option<Uuid>) -> AppResult<()> {
        let ws = access.uuid();
        let not_found = || AppError::not_found("memory not found or not owned by this workspace");
        let id = id.ok_or_else(not_found)?;
        match self.store.memory_delete(ws.into(), id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_found()),
            Err(e) => Err(AppError::internal("failed to delete memory")(e)),
        }
    }
}
