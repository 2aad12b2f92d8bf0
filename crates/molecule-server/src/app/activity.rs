//! Activity logging off the request path: rows go into a bounded in-memory
//! queue and a background task writes them in batches. A full queue drops
//! the row, counts it and logs (at most once per second); it never blocks
//! the caller.

use molecule_store::NewActivity;
use molecule_types::{Event, EventType};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::App;
use crate::error::{AppError, AppResult};

/// Rows held in memory waiting for the writer.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Rows per transaction.
pub const BATCH: usize = 500;

#[derive(Default)]
struct Inner {
    rows: VecDeque<NewActivity>,
    last_drop_log: Option<Instant>,
}

/// The bounded queue between callers and the `activity-writer` task.
#[derive(Clone, Default)]
pub struct ActivityQueue {
    inner: Arc<Mutex<Inner>>,
}

impl ActivityQueue {
    /// Queue `row`; false when the queue is full and the row was dropped.
    fn push(&self, row: NewActivity) -> bool {
        let mut inner = self.inner.lock().expect("activity queue poisoned");
        if inner.rows.len() >= QUEUE_CAPACITY {
            let now = Instant::now();
            if inner
                .last_drop_log
                .is_none_or(|t| now.duration_since(t).as_secs() >= 1)
            {
                inner.last_drop_log = Some(now);
                tracing::warn!(
                    capacity = QUEUE_CAPACITY,
                    "activity queue full: dropping activity rows"
                );
            }
            return false;
        }
        inner.rows.push_back(row);
        true
    }

    fn take(&self, max: usize) -> Vec<NewActivity> {
        let mut inner = self.inner.lock().expect("activity queue poisoned");
        let n = inner.rows.len().min(max);
        inner.rows.drain(..n).collect()
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .expect("activity queue poisoned")
            .rows
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl App {
    /// Queue an activity row for the writer. Never blocks; a full queue is
    /// counted in `molecule_activity_dropped_total`.
    pub fn record_activity(&self, row: NewActivity) {
        if self.activity.push(row) {
            self.metrics.inc("molecule_activity_queued_total", &[]);
        } else {
            self.metrics.inc("molecule_activity_dropped_total", &[]);
        }
    }

    /// Queue a row and broadcast `ACTIVITY_LOGGED` for it (WebSocket only).
    pub fn record_activity_announced(&self, row: NewActivity) {
        if !self.events.has_subscribers() {
            self.record_activity(row);
            return;
        }
        let event = Event::new(
            EventType::ActivityLogged,
            row.workspace_id,
            json!({
                "activity_type": row.activity_type,
                "method": row.method,
                "summary": row.summary,
                "status": row.status,
                "source_id": row.source_id,
                "target_id": row.target_id,
                "duration_ms": row.duration_ms,
            }),
        );
        self.record_activity(row);
        self.events.publish_live(event);
    }

    /// Write everything queued, in batches. Returns the rows written. On a
    /// database error the batch is put back at the front of the queue, so
    /// a hiccup loses nothing (the queue's bound still applies).
    pub async fn flush_activity(&self) -> AppResult<usize> {
        let mut written = 0;
        loop {
            let batch = self.activity.take(BATCH);
            if batch.is_empty() {
                return Ok(written);
            }
            match self.store.activity_insert_many(&batch).await {
                Ok(n) => {
                    written += batch.len();
                    self.metrics
                        .add("molecule_activity_rows_written_total", &[], n as f64);
                }
                Err(e) => {
                    let mut inner = self.activity.inner.lock().expect("activity queue poisoned");
                    for row in batch.into_iter().rev() {
                        if inner.rows.len() < QUEUE_CAPACITY {
                            inner.rows.push_front(row);
                        }
                    }
                    drop(inner);
                    return Err(AppError::internal("failed to write activity")(e));
                }
            }
        }
    }
}

/// Activity types an agent may report (data-and-lifecycle §4.4).
pub const REPORTABLE_TYPES: [&str; 7] = [
    "a2a_send",
    "a2a_receive",
    "task_update",
    "agent_log",
    "skill_promotion",
    "memory_write",
    "error",
];

/// Query of `GET /workspaces/:id/activity`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ActivityListQuery {
    #[serde(rename = "type")]
    pub activity_type: Option<String>,
    pub source: Option<String>,
    pub limit: Option<String>,
}

/// Body of `POST /workspaces/:id/activity`.
#[derive(Debug, serde::Deserialize)]
pub struct ActivityReport {
    #[serde(default)]
    pub activity_type: String,
    pub method: Option<String>,
    pub summary: Option<String>,
    pub target_id: Option<String>,
    pub source_id: Option<String>,
    pub status: Option<String>,
    pub error_detail: Option<String>,
    pub duration_ms: Option<i64>,
    pub request_body: Option<serde_json::Value>,
    pub metadata: Option<serde_json::Value>,
    pub response_body: Option<serde_json::Value>,
}

/// `limit` query parameter: default when absent or unparsable, clamped.
pub fn limit_param(raw: Option<&str>, default: i64, max: i64) -> i64 {
    raw.and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
        .min(max)
}

fn parse_opt_uuid(raw: Option<&str>, field: &str) -> AppResult<Option<uuid::Uuid>> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| super::validation::uuid_field(s, field))
        .transpose()
}

/// The wire view of an activity row.
pub fn activity_view(r: &molecule_store::ActivityRow) -> serde_json::Value {
    let mut v = json!({
        "id": r.id,
        "workspace_id": r.workspace_id,
        "activity_type": r.activity_type,
        "source_id": r.source_id,
        "target_id": r.target_id,
        "method": r.method,
        "summary": r.summary,
        "duration_ms": r.duration_ms,
        "status": r.status,
        "error_detail": r.error_detail,
        "created_at": r.created_at,
    });
    if let Some(l) = &r.source_label {
        v["source_label"] = json!(l);
    }
    if let Some(b) = &r.request_body {
        v["request_body"] = b.clone();
    }
    if let Some(b) = &r.response_body {
        v["response_body"] = b.clone();
    }
    v
}

impl App {
    /// GET /workspaces/:id/activity.
    pub async fn activity_list(
        &self,
        id: uuid::Uuid,
        q: ActivityListQuery,
    ) -> AppResult<Vec<serde_json::Value>> {
        let source = match q.source.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some("canvas") => Some(molecule_store::ActivitySource::Canvas),
            Some("agent") => Some(molecule_store::ActivitySource::Agent),
            Some(_) => return Err(AppError::invalid("source must be 'canvas' or 'agent'")),
        };
        let rows = self
            .store
            .activity_list(&molecule_store::ActivityQuery {
                workspace_id: id,
                activity_type: q.activity_type.filter(|t| !t.is_empty()),
                source,
                methods: Vec::new(),
                limit: limit_param(q.limit.as_deref(), 100, 500),
            })
            .await
            .map_err(AppError::internal("failed to list activity"))?;
        Ok(rows.iter().map(activity_view).collect())
    }

    /// POST /workspaces/:id/activity: an agent reports what it did.
    pub async fn activity_report(&self, id: uuid::Uuid, r: ActivityReport) -> AppResult<()> {
        if !REPORTABLE_TYPES.contains(&r.activity_type.as_str()) {
            return Err(AppError::invalid(format!(
                "invalid activity_type: expected one of {}",
                REPORTABLE_TYPES.join(", ")
            )));
        }
        let source = parse_opt_uuid(r.source_id.as_deref(), "source_id")?;
        if source.is_some_and(|s| s != id) {
            return Err(AppError::forbidden(
                "source_id must match authenticated workspace",
            ));
        }
        let target = parse_opt_uuid(r.target_id.as_deref(), "target_id")?;
        let mut row = NewActivity::new(id, &r.activity_type);
        row.source_id = Some(id);
        row.target_id = target;
        row.method = r.method;
        row.summary = r.summary;
        row.status = r
            .status
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "ok".into());
        row.error_detail = r.error_detail;
        row.duration_ms = r.duration_ms.map(|d| d.max(0));
        row.request_body = r.request_body.or(r.metadata);
        row.response_body = r.response_body;
        self.record_activity_announced(row);
        Ok(())
    }

    /// POST /workspaces/:id/notify: a message from the agent to the
    /// operators watching.
    pub async fn notify(&self, id: uuid::Uuid, message: &str) -> AppResult<()> {
        if message.trim().is_empty() {
            return Err(AppError::invalid("message is required"));
        }
        super::validation::cap("message", message, super::validation::LONG_TEXT_MAX)?;
        let row = self.live_workspace_row(id).await?;
        self.events.publish_live(Event::new(
            EventType::AgentMessage,
            id,
            json!({ "message": message, "workspace_id": id, "name": row.name }),
        ));
        Ok(())
    }

    /// GET /workspaces/:id/session-search: own activity and own memories,
    /// newest first.
    pub async fn session_search(
        &self,
        id: uuid::Uuid,
        q: Option<&str>,
        limit: Option<&str>,
    ) -> AppResult<Vec<serde_json::Value>> {
        let limit = limit_param(limit, 50, 200);
        let q = q.map(str::trim).filter(|s| !s.is_empty());
        let err = || AppError::internal("session search failed");
        let acts = self
            .store
            .activity_search(id, q, limit)
            .await
            .map_err(|e| err()(e))?;
        let mems = self
            .store
            .memory_search_own(id, q, limit)
            .await
            .map_err(|e| err()(e))?;
        let mut hits: Vec<(chrono::DateTime<chrono::Utc>, serde_json::Value)> = acts
            .iter()
            .map(|a| {
                let mut v = json!({
                    "kind": "activity",
                    "id": a.id,
                    "workspace_id": a.workspace_id,
                    "label": a.activity_type,
                    "content": a.summary.clone().unwrap_or_default(),
                    "method": a.method,
                    "status": a.status,
                    "created_at": a.created_at,
                });
                if let Some(b) = &a.request_body {
                    v["request_body"] = b.clone();
                }
                if let Some(b) = &a.response_body {
                    v["response_body"] = b.clone();
                }
                (a.created_at, v)
            })
            .chain(mems.iter().map(|m| {
                (
                    m.created_at,
                    json!({
                        "kind": "memory",
                        "id": m.id,
                        "workspace_id": m.workspace_id,
                        "label": format!("{}/{}", m.scope, m.namespace),
                        "content": m.content,
                        "method": null,
                        "status": null,
                        "created_at": m.created_at,
                    }),
                )
            }))
            .collect();
        hits.sort_by_key(|h| std::cmp::Reverse(h.0));
        hits.truncate(limit as usize);
        Ok(hits.into_iter().map(|(_, v)| v).collect())
    }

    /// One activation of the retention task: delete rows older than the
    /// retention period.
    pub async fn purge_activity(&self) -> AppResult<u64> {
        let before = chrono::Utc::now()
            - chrono::Duration::from_std(self.config.activity_retention)
                .unwrap_or(chrono::Duration::days(7));
        let n = self
            .store
            .activity_purge_before(before)
            .await
            .map_err(AppError::internal("activity retention failed"))?;
        if n > 0 {
            tracing::info!(rows = n, "activity retention: old rows deleted");
            self.metrics
                .add("molecule_activity_purged_total", &[], n as f64);
        }
        Ok(n)
    }
}
