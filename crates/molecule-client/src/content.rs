//! Org content (api-contract §5.12–5.14, §5.16, viewport in §5.18): agent
//! records, templates, files, shared context, team expand/collapse, org
//! import and bundles.

use molecule_types::content::{
    AgentAssigned, AgentModel, AgentMoved, AgentRemoved, AgentReplaced, Bundle, BundleImported,
    Collapsed, Expanded, FileContent, FileEntryView, FilesReplaced, ImportTemplate, MoveAgent,
    OrgImport, OrgImported, OrgTemplateSummary, ReplaceFiles, SharedFile, TemplateImported,
    TemplateSummary, ViewportView, WriteFile,
};
use molecule_types::dto::StatusReply;
use reqwest::Method;
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::client::{Client, NO_BODY, encode};
use crate::error::ClientError;

/// A relative file path as it goes in a URL: each segment encoded, the
/// slashes kept.
fn file_url(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

impl Client {
    /// `POST /workspaces/:id/agent`.
    pub async fn assign_agent(&self, id: Uuid, model: &str) -> Result<AgentAssigned, ClientError> {
        let body = AgentModel {
            model: model.into(),
        };
        self.call(
            Method::POST,
            &format!("/workspaces/{id}/agent"),
            Some(&body),
        )
        .await
    }

    /// `PATCH /workspaces/:id/agent`.
    pub async fn replace_agent(&self, id: Uuid, model: &str) -> Result<AgentReplaced, ClientError> {
        let body = AgentModel {
            model: model.into(),
        };
        self.call(
            Method::PATCH,
            &format!("/workspaces/{id}/agent"),
            Some(&body),
        )
        .await
    }

    /// `DELETE /workspaces/:id/agent`.
    pub async fn remove_agent(&self, id: Uuid) -> Result<AgentRemoved, ClientError> {
        self.call(Method::DELETE, &format!("/workspaces/{id}/agent"), NO_BODY)
            .await
    }

    /// `POST /workspaces/:id/agent/move`.
    pub async fn move_agent(&self, id: Uuid, target: Uuid) -> Result<AgentMoved, ClientError> {
        let body = MoveAgent {
            target_workspace_id: target.to_string(),
        };
        self.call(
            Method::POST,
            &format!("/workspaces/{id}/agent/move"),
            Some(&body),
        )
        .await
    }

    /// `GET /canvas/viewport`.
    pub async fn viewport(&self) -> Result<ViewportView, ClientError> {
        self.call(Method::GET, "/canvas/viewport", NO_BODY).await
    }

    /// `PUT /canvas/viewport`.
    pub async fn save_viewport(&self, v: &ViewportView) -> Result<StatusReply, ClientError> {
        self.call(Method::PUT, "/canvas/viewport", Some(v)).await
    }

    /// `GET /templates`.
    pub async fn templates(&self) -> Result<Vec<TemplateSummary>, ClientError> {
        self.call(Method::GET, "/templates", NO_BODY).await
    }

    /// `POST /templates/import` (admin).
    pub async fn import_template(
        &self,
        name: &str,
        files: BTreeMap<String, String>,
    ) -> Result<TemplateImported, ClientError> {
        let body = ImportTemplate {
            name: name.into(),
            files,
        };
        self.call(Method::POST, "/templates/import", Some(&body))
            .await
    }

    /// `GET /workspaces/:id/files?root=&path=&depth=` (`None` = the route's
    /// defaults: `/configs`, its top, depth 1).
    pub async fn list_files(
        &self,
        id: Uuid,
        root: Option<&str>,
        path: Option<&str>,
        depth: Option<u32>,
    ) -> Result<Vec<FileEntryView>, ClientError> {
        let mut query = Vec::new();
        if let Some(r) = root {
            query.push(format!("root={}", encode(r)));
        }
        if let Some(p) = path {
            query.push(format!("path={}", encode(p)));
        }
        if let Some(d) = depth {
            query.push(format!("depth={d}"));
        }
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{}", query.join("&"))
        };
        self.call(
            Method::GET,
            &format!("/workspaces/{id}/files{query}"),
            NO_BODY,
        )
        .await
    }

    /// `GET /workspaces/:id/files/*path`.
    pub async fn read_file(
        &self,
        id: Uuid,
        path: &str,
        root: Option<&str>,
    ) -> Result<FileContent, ClientError> {
        let query = root
            .map(|r| format!("?root={}", encode(r)))
            .unwrap_or_default();
        self.call(
            Method::GET,
            &format!("/workspaces/{id}/files/{}{query}", file_url(path)),
            NO_BODY,
        )
        .await
    }

    /// `PUT /workspaces/:id/files/*path` (under `/configs`).
    pub async fn write_file(
        &self,
        id: Uuid,
        path: &str,
        content: &str,
    ) -> Result<serde_json::Value, ClientError> {
        let body = WriteFile {
            content: content.into(),
        };
        self.call(
            Method::PUT,
            &format!("/workspaces/{id}/files/{}", file_url(path)),
            Some(&body),
        )
        .await
    }

    /// `DELETE /workspaces/:id/files/*path` (recursive; `""` empties
    /// `/configs`).
    pub async fn delete_file(
        &self,
        id: Uuid,
        path: &str,
    ) -> Result<serde_json::Value, ClientError> {
        self.call(
            Method::DELETE,
            &format!("/workspaces/{id}/files/{}", file_url(path)),
            NO_BODY,
        )
        .await
    }

    /// `PUT /workspaces/:id/files`: merge-write many files.
    pub async fn replace_files(
        &self,
        id: Uuid,
        files: BTreeMap<String, String>,
    ) -> Result<FilesReplaced, ClientError> {
        let body = ReplaceFiles { files };
        self.call(Method::PUT, &format!("/workspaces/{id}/files"), Some(&body))
            .await
    }

    /// `GET /workspaces/:id/shared-context`.
    pub async fn shared_context(&self, id: Uuid) -> Result<Vec<SharedFile>, ClientError> {
        self.call(
            Method::GET,
            &format!("/workspaces/{id}/shared-context"),
            NO_BODY,
        )
        .await
    }

    /// `POST /workspaces/:id/expand`.
    pub async fn expand(&self, id: Uuid) -> Result<Expanded, ClientError> {
        self.call(Method::POST, &format!("/workspaces/{id}/expand"), NO_BODY)
            .await
    }

    /// `POST /workspaces/:id/collapse`.
    pub async fn collapse(&self, id: Uuid) -> Result<Collapsed, ClientError> {
        self.call(Method::POST, &format!("/workspaces/{id}/collapse"), NO_BODY)
            .await
    }

    /// `GET /org/templates`.
    pub async fn org_templates(&self) -> Result<Vec<OrgTemplateSummary>, ClientError> {
        self.call(Method::GET, "/org/templates", NO_BODY).await
    }

    /// `POST /org/import` (admin). A partial import (207, a node failed)
    /// is `Ok` too: its `error` names the node.
    pub async fn import_org(&self, req: &OrgImport) -> Result<OrgImported, ClientError> {
        let response = self
            .send_typed(Method::POST, "/org/import", Some(req))
            .await?;
        if response.status == 207 {
            return response.decode("POST /org/import");
        }
        response.error_for_status()?.decode("POST /org/import")
    }

    /// `GET /bundles/export/:id` (admin).
    pub async fn export_bundle(&self, id: Uuid) -> Result<Bundle, ClientError> {
        self.call(Method::GET, &format!("/bundles/export/{id}"), NO_BODY)
            .await
    }

    /// `POST /bundles/import` (admin).
    pub async fn import_bundle(&self, bundle: &Bundle) -> Result<BundleImported, ClientError> {
        self.call(Method::POST, "/bundles/import", Some(bundle))
            .await
    }
}
