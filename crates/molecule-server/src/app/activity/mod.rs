//! Activity logging (api-contract §5.7): listing, reports, notify, session
//! search, retention, and the way rows reach the database. Rows go into a
//! bounded queue ([`queue`]) and the `activity-writer` task writes them in
//! batches. A row the API acknowledges (an agent's report) carries a
//! completion: its caller answers only once the batch holding it is
//! committed (group commit), and hears of a failed batch. The proxy's
//! per-call rows and the scheduler's history rows are fire-and-forget: a
//! full queue drops them, counts them and logs. Every row is capped
//! ([`fields`]); agents' writes are charged to a per-workspace budget
//! ([`budget`]).

pub mod budget;
pub mod fields;
pub mod queue;

use molecule_store::NewActivity;
use molecule_types::{ActivityType, Event, EventType};
use serde_json::json;
use std::time::Instant;

use super::App;
use crate::app::auth::WorkspaceAccess;
use crate::error::{AppError, AppResult, Pressure};
pub use budget::{BudgetConfig, WriteBudget};
use molecule_types::workspace_data::{ActivityEntry, SessionHit};
pub use queue::ActivityQueue;
use queue::{Batch, Queued};

/// Name of the background task that writes the queue.
pub const ACTIVITY_WRITER: &str = "activity-writer";
/// `Retry-After` of a report refused because the queue is full or its
/// batch failed, seconds: both pass as soon as the writer catches up.
const RETRY_AFTER_SECS: u64 = 1;

impl App {
    /// Queue a fire-and-forget activity row. Never blocks; a full queue is
    /// counted in `molecule_activity_dropped_total`.
    pub fn record_activity(&self, mut row: NewActivity) {
        fields::cap_row(&mut row);
        let bytes = fields::row_bytes(&row);
        self.queue_row(row, bytes, None);
    }

    fn queue_row(&self, row: NewActivity, bytes: usize, done: Option<queue::Completion>) -> bool {
        if self.activity.push(row, bytes, done).is_ok() {
            self.metrics.inc("molecule_activity_queued_total", &[]);
            true
        } else {
            self.metrics.inc("molecule_activity_dropped_total", &[]);
            false
        }
    }

    /// Queue a fire-and-forget row and broadcast `ACTIVITY_LOGGED` for it
    /// (WebSocket only).
    pub fn record_activity_announced(&self, row: NewActivity) {
        if !self.events.has_subscribers() {
            self.record_activity(row);
            return;
        }
        let event = activity_logged(&row);
        self.record_activity(row);
        self.events.publish_live(event);
    }

    /// Charge `row` (capped here) to its workspace's write budget: 429 with
    /// `retry_after` when the workspace has written too much lately.
    pub fn charge_activity(&self, row: &mut NewActivity) -> AppResult<usize> {
        fields::cap_row(row);
        let bytes = fields::row_bytes(row);
        self.activity_budget
            .charge(row.workspace_id, bytes, Instant::now())
            .map_err(|retry_after| {
                self.metrics
                    .inc("molecule_activity_refused_total", &[("reason", "budget")]);
                AppError::retry_later(
                    Pressure::OverBudget,
                    "activity write budget exceeded",
                    retry_after,
                )
            })?;
        Ok(bytes)
    }

    /// Queue a capped row of `bytes` and wait until the batch holding it is
    /// committed; then broadcast `ACTIVITY_LOGGED`. A full queue answers
    /// 503 at once, a failed batch 503: never a false "logged".
    async fn record_activity_committed(&self, row: NewActivity, bytes: usize) -> AppResult<()> {
        let event = self.events.has_subscribers().then(|| activity_logged(&row));
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        if !self.queue_row(row, bytes, Some(tx)) {
            self.metrics.inc(
                "molecule_activity_refused_total",
                &[("reason", "queue_full")],
            );
            return Err(AppError::retry_later(
                Pressure::Overloaded,
                "activity queue full",
                RETRY_AFTER_SECS,
            ));
        }
        // A caller is waiting: the writer runs now instead of at its next
        // period. Under load it is already running and the row joins the
        // next batch, so waiting callers share commits.
        self.tasks.activate(ACTIVITY_WRITER);
        let mut shutdown = self.shutdown.clone();
        let early = tokio::select! {
            r = &mut rx => Some(r),
            _ = shutdown.wait_for(|stop| *stop) => None,
        };
        let outcome = match early {
            Some(r) => r,
            None => {
                // The writer stops with the server while requests are still
                // being finished: write what is queued from here.
                if let Err(e) = self.flush_activity().await {
                    tracing::warn!(error = %e, "activity flush at shutdown failed");
                }
                rx.await
            }
        };
        match outcome {
            Ok(Ok(())) => {
                if let Some(event) = event {
                    self.events.publish_live(event);
                }
                Ok(())
            }
            _ => Err(AppError::retry_later(
                Pressure::Overloaded,
                "failed to log activity",
                RETRY_AFTER_SECS,
            )),
        }
    }

    /// Write everything queued, in batches; every waiting caller hears how
    /// its batch ended. Returns the rows written. On a database error the
    /// waiting callers are told (and their rows dropped: they were not
    /// acknowledged) and the fire-and-forget rows go back to the front of
    /// the queue, so a hiccup loses none of them.
    pub async fn flush_activity(&self) -> AppResult<usize> {
        let mut written = 0;
        loop {
            let Batch { rows, meta } = self.activity.take();
            if rows.is_empty() {
                return Ok(written);
            }
            let bytes: usize = meta.iter().map(|m| m.0).sum();
            match self.store.activity_insert_many(&rows).await {
                Ok(n) => {
                    self.activity.release(bytes);
                    written += rows.len();
                    self.metrics
                        .add("molecule_activity_rows_written_total", &[], n as f64);
                    self.metrics.inc("molecule_activity_batches_total", &[]);
                    for (_, done) in meta {
                        if let Some(done) = done {
                            let _ = done.send(Ok(()));
                        }
                    }
                }
                Err(e) => {
                    let mut again = Vec::new();
                    let mut given_up = 0;
                    for (row, (bytes, done)) in rows.into_iter().zip(meta) {
                        match done {
                            Some(done) => {
                                given_up += bytes;
                                let _ = done.send(Err(()));
                            }
                            None => again.push(Queued {
                                row,
                                bytes,
                                done: None,
                            }),
                        }
                    }
                    self.activity.release(given_up);
                    self.activity.requeue_front(again);
                    return Err(AppError::internal("failed to write activity")(e));
                }
            }
        }
    }
}

/// The `ACTIVITY_LOGGED` event of a row.
fn activity_logged(row: &NewActivity) -> Event {
    Event::new(
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
    )
}

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
pub fn activity_view(r: &molecule_store::ActivityRow) -> ActivityEntry {
    ActivityEntry {
        id: r.id,
        workspace_id: r.workspace_id,
        activity_type: r.activity_type,
        source_id: r.source_id,
        target_id: r.target_id,
        method: r.method.clone(),
        summary: r.summary.clone(),
        duration_ms: r.duration_ms,
        status: r.status.clone(),
        error_detail: r.error_detail.clone(),
        created_at: r.created_at,
        source_label: r.source_label.clone(),
        request_body: r.request_body.clone(),
        response_body: r.response_body.clone(),
    }
}

impl App {
    /// GET /workspaces/:id/activity.
    pub async fn activity_list(
        &self,
        access: WorkspaceAccess,
        q: ActivityListQuery,
    ) -> AppResult<Vec<ActivityEntry>> {
        let id = access.uuid();
        let source = match q.source.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some("canvas") => Some(molecule_store::ActivitySource::Canvas),
            Some("agent") => Some(molecule_store::ActivitySource::Agent),
            Some(_) => return Err(AppError::invalid("source must be 'canvas' or 'agent'")),
        };
        let activity_type = match q.activity_type.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => match t.parse::<ActivityType>() {
                Ok(t) => Some(t),
                // A type the platform never writes matches no row.
                Err(_) => return Ok(Vec::new()),
            },
        };
        let rows = self
            .store
            .activity_list(&molecule_store::ActivityQuery {
                workspace_id: id,
                activity_type,
                source,
                methods: Vec::new(),
                limit: limit_param(q.limit.as_deref(), 100, 500),
            })
            .await
            .map_err(AppError::internal("failed to list activity"))?;
        Ok(rows.iter().map(activity_view).collect())
    }

    /// POST /workspaces/:id/activity: an agent reports what it did.
    pub async fn activity_report(
        &self,
        access: WorkspaceAccess,
        r: ActivityReport,
    ) -> AppResult<()> {
        let id = access.uuid();
        let reportable = ActivityType::REPORTABLE;
        let Some(activity_type) = r
            .activity_type
            .parse()
            .ok()
            .filter(|t: &ActivityType| reportable.contains(t))
        else {
            let words: Vec<&str> = reportable.iter().map(|t| t.as_str()).collect();
            return Err(AppError::invalid(format!(
                "invalid activity_type: expected one of {}",
                words.join(", ")
            )));
        };
        let source = parse_opt_uuid(r.source_id.as_deref(), "source_id")?;
        if source.is_some_and(|s| s != id) {
            return Err(AppError::forbidden(
                "source_id must match authenticated workspace",
            ));
        }
        let target = parse_opt_uuid(r.target_id.as_deref(), "target_id")?;
        let mut row = NewActivity::new(id, activity_type);
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
        let bytes = self.charge_activity(&mut row)?;
        self.record_activity_committed(row, bytes).await
    }

    /// POST /workspaces/:id/notify: a message from the agent to the
    /// operators watching.
    pub async fn notify(&self, access: WorkspaceAccess, message: &str) -> AppResult<()> {
        let id = access.uuid();
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
        access: WorkspaceAccess,
        q: Option<&str>,
        limit: Option<&str>,
    ) -> AppResult<Vec<SessionHit>> {
        let id = access.uuid();
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
        let mut hits: Vec<SessionHit> = acts
            .iter()
            .map(|a| SessionHit {
                kind: "activity".into(),
                id: a.id,
                workspace_id: a.workspace_id,
                label: a.activity_type.to_string(),
                content: a.summary.clone().unwrap_or_default(),
                method: a.method.clone(),
                status: Some(a.status.clone()),
                created_at: a.created_at,
                request_body: a.request_body.clone(),
                response_body: a.response_body.clone(),
            })
            .chain(mems.iter().map(|m| SessionHit {
                kind: "memory".into(),
                id: m.id,
                workspace_id: m.workspace_id,
                label: format!("{}/{}", m.scope, m.namespace),
                content: m.content.clone(),
                method: None,
                status: None,
                created_at: m.created_at,
                request_body: None,
                response_body: None,
            }))
            .collect();
        hits.sort_by_key(|h| std::cmp::Reverse(h.created_at));
        hits.truncate(limit as usize);
        Ok(hits)
    }

    /// One activation of the retention task: delete rows older than the
    /// retention period.
    pub async fn purge_activity(&self) -> AppResult<u64> {
        let before = self.now()
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
        // Webhook delivery ids (replay protection) age out with it.
        self.purge_webhook_deliveries().await?;
        Ok(n)
    }
}
