//! Workspace and global secrets (api-contract §5.10, data-and-lifecycle
//! §4.6): sealing on write, opening for `values`/`model`/provisioning, and
//! the restarts a change causes. Values are never logged; errors name keys
//! only.

use chrono::Utc;
use molecule_store::{SecretRow, WorkspaceRow};
use molecule_types::WorkspaceStatus;
use molecule_types::workspace_data::{ModelSetting, SecretEntry};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::app::App;
use crate::app::auth::{AdminAccess, WorkspaceAccess};
use crate::app::workspaces::lifecycle::PROVISIONER_TASK;
use crate::error::{AppError, AppResult};

/// Several changes in a burst (a script setting five keys) coalesce into
/// one restart per workspace: the restart queue keeps one entry per id.
const RESTART_DEBOUNCE: Duration = Duration::from_secs(2);

/// A listing entry: key and timestamps, never the value.
pub struct SecretInfo {
    pub key: String,
    pub scope: &'static str,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
}

impl SecretInfo {
    pub fn view(&self) -> SecretEntry {
        SecretEntry {
            key: self.key.clone(),
            has_value: true,
            scope: self.scope.to_string(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

fn query_failed(e: molecule_store::StoreError) -> AppError {
    AppError::internal("secrets query failed")(e)
}

/// Why the merged secrets could not be produced.
pub enum SecretsError {
    Store(AppError),
    /// `scope:KEY` of every value that could not be opened.
    Undecryptable(Vec<String>),
}

pub(crate) fn validate(key: &str, value: &str) -> AppResult<()> {
    if key.is_empty() || value.is_empty() {
        return Err(AppError::invalid("key and value are required"));
    }
    crate::app::validation::validate_secret_key(key)?;
    if value.len() > 64 * 1024 {
        return Err(AppError::invalid("value must be at most 65536 bytes"));
    }
    Ok(())
}

impl App {
    /// Store a workspace secret sealed, with no restart: for a workspace
    /// being created, before its first start.
    pub(crate) async fn secret_seed(
        &self,
        ws: uuid::Uuid,
        key: &str,
        value: &str,
    ) -> AppResult<()> {
        validate(key, value)?;
        let sealed = self.secret_box.seal(value);
        self.store
            .secret_set_workspace(ws, key, sealed.bytes(), sealed.version(), self.now())
            .await
            .map_err(AppError::internal("failed to save secret"))
    }

    /// Check and seal secrets for a workspace being created.
    pub(crate) fn seal_secrets(
        &self,
        secrets: &[(String, String)],
    ) -> AppResult<Vec<molecule_store::SealedSecret>> {
        secrets
            .iter()
            .map(|(key, value)| {
                validate(key, value)?;
                let sealed = self.secret_box.seal(value);
                Ok(molecule_store::SealedSecret {
                    key: key.clone(),
                    value: sealed.bytes().to_vec(),
                    encryption_version: sealed.version(),
                })
            })
            .collect()
    }

    pub async fn secret_list(&self, access: WorkspaceAccess) -> AppResult<Vec<SecretInfo>> {
        let ws = access.uuid();
        let own = self
            .store
            .secret_list_workspace(ws)
            .await
            .map_err(query_failed)?;
        let globals = self
            .store
            .secret_list_global()
            .await
            .map_err(query_failed)?;
        let mut out: Vec<SecretInfo> = own.iter().map(|r| info(r, "workspace")).collect();
        out.extend(
            globals
                .iter()
                .filter(|g| !own.iter().any(|o| o.key == g.key))
                .map(|r| info(r, "global")),
        );
        Ok(out)
    }

    pub async fn secret_list_global(&self, _: AdminAccess) -> AppResult<Vec<SecretInfo>> {
        let globals = self
            .store
            .secret_list_global()
            .await
            .map_err(query_failed)?;
        Ok(globals.iter().map(|r| info(r, "global")).collect())
    }

    /// The merged plaintext map (workspace overrides global). A value that
    /// cannot be opened is an error naming every such key.
    pub async fn secret_values(&self, ws: Uuid) -> Result<BTreeMap<String, String>, SecretsError> {
        let fail = |e| SecretsError::Store(query_failed(e));
        let globals = self.store.secret_list_global().await.map_err(fail)?;
        let own = self.store.secret_list_workspace(ws).await.map_err(fail)?;
        let mut values = BTreeMap::new();
        let mut failed = Vec::new();
        for (scope, rows) in [("global", &globals), ("workspace", &own)] {
            for r in rows.iter() {
                match self.secret_box.open(&r.value, r.encryption_version) {
                    Ok(v) => {
                        values.insert(r.key.clone(), v);
                    }
                    Err(e) => {
                        tracing::error!(workspace_id = %ws, scope, key = %r.key, error = %e, "secret cannot be decrypted");
                        failed.push(format!("{scope}:{}", r.key));
                    }
                }
            }
        }
        if failed.is_empty() {
            Ok(values)
        } else {
            Err(SecretsError::Undecryptable(failed))
        }
    }

    /// `GET …/secrets/values` with the contract's 500 shape on failure.
    pub async fn secret_values_view(
        &self,
        access: WorkspaceAccess,
    ) -> AppResult<BTreeMap<String, String>> {
        let ws = access.uuid();
        match self.secret_values(ws).await {
            Ok(m) => Ok(m),
            Err(SecretsError::Store(e)) => Err(e),
            Err(SecretsError::Undecryptable(failed)) => Err(AppError::Undecryptable {
                failed_keys: failed,
            }),
        }
    }

    /// `GET /workspaces/:id/model`: the workspace's `MODEL_PROVIDER` secret.
    pub async fn secret_model(&self, access: WorkspaceAccess) -> AppResult<ModelSetting> {
        let ws = access.uuid();
        let own = self
            .store
            .secret_list_workspace(ws)
            .await
            .map_err(query_failed)?;
        let Some(r) = own.iter().find(|r| r.key == "MODEL_PROVIDER") else {
            return Ok(ModelSetting {
                model: String::new(),
                source: "default".into(),
            });
        };
        let model = self
            .secret_box
            .open(&r.value, r.encryption_version)
            .map_err(|e| AppError::Internal {
                public: "failed to decrypt model",
                cause: format!("MODEL_PROVIDER of {ws}: {e}"),
            })?;
        Ok(ModelSetting {
            model,
            source: "workspace_secrets".into(),
        })
    }

    pub async fn secret_set(
        &self,
        access: WorkspaceAccess,
        key: &str,
        value: &str,
    ) -> AppResult<()> {
        let ws = access.uuid();
        validate(key, value)?;
        let sealed = self.secret_box.seal(value);
        self.store
            .secret_set_workspace(ws, key, sealed.bytes(), sealed.version(), self.now())
            .await
            .map_err(AppError::internal("failed to save secret"))?;
        tracing::info!(workspace_id = %ws, key, "workspace secret saved");
        self.restart_after_secret_change(&[ws], key).await;
        Ok(())
    }

    pub async fn secret_delete(&self, access: WorkspaceAccess, key: &str) -> AppResult<()> {
        let ws = access.uuid();
        let found = self
            .store
            .secret_delete_workspace(ws, key)
            .await
            .map_err(AppError::internal("failed to delete secret"))?;
        if !found {
            return Err(AppError::not_found("secret not found"));
        }
        tracing::info!(workspace_id = %ws, key, "workspace secret deleted");
        self.restart_after_secret_change(&[ws], key).await;
        Ok(())
    }

    pub async fn secret_set_global(&self, _: AdminAccess, key: &str, value: &str) -> AppResult<()> {
        validate(key, value)?;
        let sealed = self.secret_box.seal(value);
        self.store
            .secret_set_global(key, sealed.bytes(), sealed.version(), self.now())
            .await
            .map_err(AppError::internal("failed to save secret"))?;
        tracing::info!(key, "global secret saved");
        self.restart_for_global(key).await;
        Ok(())
    }

    pub async fn secret_delete_global(&self, _: AdminAccess, key: &str) -> AppResult<()> {
        let found = self
            .store
            .secret_delete_global(key)
            .await
            .map_err(AppError::internal("failed to delete secret"))?;
        if !found {
            return Err(AppError::not_found("secret not found"));
        }
        tracing::info!(key, "global secret deleted");
        self.restart_for_global(key).await;
        Ok(())
    }

    /// Every running workspace without its own `key` sees the global change.
    async fn restart_for_global(&self, key: &str) {
        let overriding = match self.store.secret_workspaces_with_key(key).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, key, "cannot list overriding workspaces; no restarts");
                return;
            }
        };
        let rows = match self.store.workspace_list().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, key, "cannot list workspaces; no restarts");
                return;
            }
        };
        let ids: Vec<Uuid> = rows
            .iter()
            .map(|r| r.id)
            .filter(|id| !overriding.contains(id))
            .collect();
        self.restart_after_secret_change(&ids, key).await;
    }

    /// Queue a restart of each workspace whose runtime sees the secret:
    /// not removed, paused or external, and only when there is a runtime
    /// backend. Goes through the restart queue the governor's decisions use
    /// (one pending restart per workspace, performed by the `provisioner`
    /// task) but is not counted as a crash.
    async fn restart_after_secret_change(&self, ids: &[Uuid], key: &str) {
        if self.provisioner.is_none() {
            return;
        }
        let reason = format!("secret {key} changed");
        let mut queued = false;
        for &id in ids {
            let Ok(Some(row)) = self.store.workspace_get(id).await else {
                continue;
            };
            if !restartable(&row) {
                continue;
            }
            self.restart_queue
                .schedule(id, Instant::now() + RESTART_DEBOUNCE, reason.clone());
            self.decision(
                id,
                molecule_types::RestartDecision::Restart,
                &reason,
                json!({ "trigger": "secret" }),
            )
            .await;
            queued = true;
        }
        if queued {
            self.tasks.activate(PROVISIONER_TASK);
        }
    }

    /// The environment a workspace's runtime gets from secrets: globals
    /// overridden by the workspace's own. Any value that cannot be opened
    /// fails provisioning with a reason naming the keys.
    pub async fn secret_env(&self, ws: Uuid) -> AppResult<Vec<(String, String)>> {
        match self.secret_values(ws).await {
            Ok(m) => Ok(m.into_iter().collect()),
            Err(SecretsError::Store(e)) => Err(e),
            Err(SecretsError::Undecryptable(failed)) => Err(AppError::Internal {
                public: "secret decryption failed",
                cause: format!("cannot decrypt secrets {}", failed.join(", ")),
            }),
        }
    }
}

fn restartable(row: &WorkspaceRow) -> bool {
    !matches!(
        row.status,
        WorkspaceStatus::Removed | WorkspaceStatus::Paused | WorkspaceStatus::Provisioning
    ) && !row.runtime.is_external()
}

fn info(r: &SecretRow, scope: &'static str) -> SecretInfo {
    SecretInfo {
        key: r.key.clone(),
        scope,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}
