//! `workspace_secrets` and `global_secrets` on PostgreSQL. Values arrive
//! already sealed by the server, together with their `encryption_version`.

use super::PostgresStore;
use crate::{Result, SecretRow, SecretStore, secrets::sql};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

fn row(r: &PgRow) -> Result<SecretRow> {
    Ok(SecretRow {
        key: r.try_get("key")?,
        value: r.try_get("encrypted_value")?,
        encryption_version: r.try_get("encryption_version")?,
        created_at: r
            .try_get::<Option<DateTime<Utc>>, _>("created_at")?
            .unwrap_or_default(),
        updated_at: r
            .try_get::<Option<DateTime<Utc>>, _>("updated_at")?
            .unwrap_or_default(),
    })
}

#[async_trait]
impl SecretStore for PostgresStore {
    async fn secret_set_workspace(
        &self,
        workspace_id: Uuid,
        key: &str,
        value: &[u8],
        version: i32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(sql::SET_WORKSPACE)
            .bind(Uuid::new_v4())
            .bind(workspace_id)
            .bind(key)
            .bind(value)
            .bind(version)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn secret_list_workspace(&self, workspace_id: Uuid) -> Result<Vec<SecretRow>> {
        let rows = sqlx::query(sql::LIST_WORKSPACE)
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row).collect()
    }

    async fn secret_delete_workspace(&self, workspace_id: Uuid, key: &str) -> Result<bool> {
        let n = sqlx::query(sql::DELETE_WORKSPACE)
            .bind(workspace_id)
            .bind(key)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn secret_set_global(
        &self,
        key: &str,
        value: &[u8],
        version: i32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(sql::SET_GLOBAL)
            .bind(Uuid::new_v4())
            .bind(key)
            .bind(value)
            .bind(version)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn secret_list_global(&self) -> Result<Vec<SecretRow>> {
        let rows = sqlx::query(sql::LIST_GLOBAL).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    async fn secret_delete_global(&self, key: &str) -> Result<bool> {
        let n = sqlx::query(sql::DELETE_GLOBAL)
            .bind(key)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn secret_workspaces_with_key(&self, key: &str) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar(sql::WORKSPACES_WITH_KEY)
            .bind(key)
            .fetch_all(&self.pool)
            .await?)
    }
}
