//! Registry (api-contract §5.4): registration, heartbeats, agent cards,
//! discovery, peers and the access check. (TTL expiry and external staleness
//! live in `supervision`.)

use chrono::{DateTime, Utc};
use molecule_store::{HeartbeatWrite, RegisterOutcome, WorkspaceRow};
use molecule_types::dto::{Discovered, Heartbeat, Peer, RegisterRequest, RegisterResponse};
use molecule_types::{Event, EventType, Transition, WorkspaceStatus, container_name};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::App;
use crate::app::auth::{AccessQuery, AgentAccess};
use crate::app::validation::{CARD_MAX, TEXT_MAX, URL_MAX, cap, truncate_marked};
use crate::config::Mode;
use crate::error::{AppError, AppResult};

/// Error rate at or above which an online workspace is `degraded`.
pub const DEGRADE_AT: f64 = 0.5;
/// Error rate below which a degraded workspace is `online` again.
pub const RECOVER_BELOW: f64 = 0.1;

/// The status change a heartbeat causes, if any (hysteresis 0.5 / 0.1).
pub fn heartbeat_transition(status: WorkspaceStatus, error_rate: f64) -> Option<Transition> {
    match status {
        WorkspaceStatus::Online if error_rate >= DEGRADE_AT => Some(Transition::DEGRADE),
        WorkspaceStatus::Degraded if error_rate < RECOVER_BELOW => Some(Transition::RECOVER),
        WorkspaceStatus::Offline => Some(Transition::RETURN),
        _ => None,
    }
}

/// A heartbeat as far as its status change goes.
#[derive(Debug, Clone)]
struct Beat {
    at: DateTime<Utc>,
    error_rate: f64,
    sample_error: String,
}

/// The change the newest of `beats` causes from `status`, if that
/// heartbeat was taken after the status was written (`changed_at`); an
/// older heartbeat says nothing about the new status.
fn judged_again(
    status: WorkspaceStatus,
    changed_at: DateTime<Utc>,
    beats: impl IntoIterator<Item = Option<Beat>>,
) -> Option<(Transition, Beat)> {
    let newest = beats.into_iter().flatten().max_by_key(|b| b.at)?;
    if newest.at <= changed_at {
        return None;
    }
    heartbeat_transition(status, newest.error_rate).map(|t| (t, newest))
}

/// An agent card is at most [`CARD_MAX`] bytes of JSON.
fn cap_card(card: &Value) -> AppResult<()> {
    let len = serde_json::to_vec(card)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if len > CARD_MAX {
        return Err(AppError::invalid(format!(
            "agent_card must be at most {CARD_MAX} bytes of JSON (got {len})"
        )));
    }
    Ok(())
}

fn parse_workspace_id(raw: &str) -> AppResult<Uuid> {
    raw.trim()
        .parse::<Uuid>()
        .map_err(|_| AppError::invalid("workspace id must be a UUID"))
}

fn peer(row: WorkspaceRow) -> Peer {
    Peer {
        id: row.id,
        name: row.name,
        role: row.role.filter(|r| !r.is_empty()),
        tier: row.tier,
        status: row.status,
        agent_card: row.agent_card,
        url: row.url.unwrap_or_default(),
        parent_id: row.parent_id,
        active_tasks: row.active_tasks,
    }
}

impl App {
    /// The checks of `POST /registry/register` that need no credential;
    /// answers the workspace id the caller must then prove.
    pub fn check_registration(&self, req: &RegisterRequest) -> AppResult<Uuid> {
        if req.id.trim().is_empty() {
            return Err(AppError::invalid("id is required"));
        }
        if req.url.trim().is_empty() {
            return Err(AppError::invalid("url is required"));
        }
        let id = parse_workspace_id(&req.id)?;
        cap("url", &req.url, URL_MAX)?;
        cap_card(&req.agent_card)?;
        self.outbound
            .check_registration_url(req.url.trim())
            .map_err(AppError::invalid)?;
        Ok(id)
    }

    /// `POST /registry/register`, for the workspace the proof names.
    pub async fn register(
        &self,
        agent: AgentAccess,
        req: RegisterRequest,
    ) -> AppResult<RegisterResponse> {
        let id = agent.uuid();
        if self.config.mode == Mode::Production {
            // Production never creates rows on registration: a workspace
            // exists because an operator created it.
            self.workspace_row(id).await?;
        }
        // A workspace this platform runs is reached at the address its
        // provisioner reported (a published port), never at the address the
        // agent sees itself at inside its network; registering before the
        // provisioner wrote that address must not store the inner one.
        let mut url = req.url.trim().to_string();
        if self.provisioner.is_some()
            && let Ok(Some(row)) = self.store.workspace_get(id).await
            && !row.runtime.is_external()
        {
            url = row.url.unwrap_or_default();
        }
        let now = self.now();
        let outcome = self
            .store
            .workspace_register(id, &url, &req.agent_card, now)
            .await
            .map_err(AppError::internal("failed to register"))?;
        self.status_written(id);
        if outcome == RegisterOutcome::SkippedRemoved {
            return Err(AppError::Gone("workspace removed".into()));
        }
        if outcome == RegisterOutcome::Inserted {
            self.hierarchy.set_parent(id, None);
        }
        self.heartbeats.discard(id);
        self.urls.set_internal(id, req.url.trim().to_string());
        self.liveness.touch(id, self.config.liveness_ttl);
        self.events
            .emit(Event::new(
                EventType::WorkspaceOnline,
                id,
                json!({ "url": req.url.trim(), "agent_card": req.agent_card }),
            ))
            .await;
        self.conformance_after_register(id);
        let auth_token = if self.has_live_token(id).await? {
            None
        } else {
            Some(self.issue_token(id).await?)
        };
        Ok(RegisterResponse {
            status: "registered".into(),
            auth_token,
        })
    }

    /// The checks of a heartbeat that need no credential (long texts are
    /// cut in place); answers the workspace id the caller must then prove.
    pub fn check_heartbeat(&self, hb: &mut Heartbeat) -> AppResult<Uuid> {
        if hb.workspace_id.trim().is_empty() {
            return Err(AppError::invalid("workspace_id is required"));
        }
        let id = parse_workspace_id(&hb.workspace_id)?;
        // Long texts are cut, not refused: a refused heartbeat would make a
        // live agent look dead.
        truncate_marked(&mut hb.current_task, TEXT_MAX);
        truncate_marked(&mut hb.sample_error, TEXT_MAX);
        if !hb.error_rate.is_finite() || hb.error_rate < 0.0 {
            return Err(AppError::invalid(
                "error_rate must be a non-negative number",
            ));
        }
        Ok(id)
    }

    /// `POST /registry/heartbeat` of a checked heartbeat, for the
    /// workspace the proof names.
    pub async fn heartbeat(&self, agent: AgentAccess, hb: Heartbeat) -> AppResult<()> {
        let id = agent.uuid();
        self.metrics.inc("molecule_heartbeats_total", &[]);
        let (status, previous_task) = match self.hot.get(id) {
            Some(hot) => hot,
            None => {
                let read_at = self.hot.generation();
                let Some(row) = self
                    .store
                    .workspace_get(id)
                    .await
                    .map_err(AppError::internal("failed to update"))?
                else {
                    return Ok(());
                };
                let task = self
                    .heartbeats
                    .pending(id)
                    .map(|p| p.current_task)
                    .or(row.current_task)
                    .unwrap_or_default();
                self.hot.put(id, read_at, row.status, task.clone());
                (row.status, task)
            }
        };
        if status == WorkspaceStatus::Removed {
            return Ok(());
        }
        self.liveness.touch(id, self.config.liveness_ttl);
        self.heartbeats.push(HeartbeatWrite {
            id,
            error_rate: hb.error_rate,
            sample_error: hb.sample_error.clone(),
            active_tasks: hb.active_tasks,
            uptime_seconds: hb.uptime_seconds,
            current_task: hb.current_task.clone(),
            at: self.now(),
        });
        self.hot.set_task(id, &hb.current_task);
        if let Some(transition) = heartbeat_transition(status, hb.error_rate) {
            self.heartbeat_moves(id, transition, hb.error_rate, &hb.sample_error)
                .await?;
        }
        if previous_task != hb.current_task {
            self.events
                .emit(Event::new(
                    EventType::TaskUpdated,
                    id,
                    json!({ "current_task": hb.current_task, "active_tasks": hb.active_tasks }),
                ))
                .await;
        }
        Ok(())
    }

    /// Apply the status change a heartbeat causes (conditional on the
    /// status it changes from) and announce it.
    async fn heartbeat_moves(
        &self,
        id: Uuid,
        transition: Transition,
        error_rate: f64,
        sample_error: &str,
    ) -> AppResult<()> {
        let to = transition.to();
        let reason = (to == WorkspaceStatus::Degraded).then(|| {
            format!(
                "error rate {error_rate:.2} is at or above {DEGRADE_AT}; last error: {sample_error}"
            )
        });
        let changed = self
            .store
            .workspace_transition(id, transition, reason.as_deref(), self.now())
            .await
            .map_err(AppError::internal("failed to update"))?;
        self.status_written(id);
        if changed {
            let payload = if to == WorkspaceStatus::Degraded {
                json!({ "error_rate": error_rate, "sample_error": sample_error })
            } else {
                json!({})
            };
            let kind = if to == WorkspaceStatus::Degraded {
                EventType::WorkspaceDegraded
            } else {
                EventType::WorkspaceOnline
            };
            self.events.emit(Event::new(kind, id, payload)).await;
        }
        Ok(())
    }

    /// Another replica changed `id`'s status at `changed_at`. A heartbeat
    /// taken after that, here while this replica still cached the old
    /// status, or recorded by any replica, may have been judged against the
    /// old status ("no change") and left the new one standing: the newest
    /// such heartbeat is judged again against the status now written.
    pub(crate) async fn heartbeat_after_status_change(
        &self,
        id: Uuid,
        changed_at: DateTime<Utc>,
    ) -> AppResult<()> {
        let Some(row) = self
            .store
            .workspace_get(id)
            .await
            .map_err(AppError::internal("failed to read"))?
        else {
            return Ok(());
        };
        let recorded = row.last_heartbeat_at.map(|at| Beat {
            at,
            error_rate: row.last_error_rate,
            sample_error: row.last_sample_error.clone().unwrap_or_default(),
        });
        let pending = self.heartbeats.pending(id).map(|b| Beat {
            at: b.at,
            error_rate: b.error_rate,
            sample_error: b.sample_error,
        });
        let Some((transition, beat)) = judged_again(row.status, changed_at, [recorded, pending])
        else {
            return Ok(());
        };
        tracing::info!(workspace_id = %id, from = row.status.as_str(), to = transition.to().as_str(), "a heartbeat taken after another replica's status change is judged again");
        self.metrics.inc("molecule_heartbeats_rejudged_total", &[]);
        self.heartbeat_moves(id, transition, beat.error_rate, &beat.sample_error)
            .await
    }

    /// The checks of `POST /registry/update-card` that need no credential.
    pub fn check_card(&self, workspace_id: &str, card: &Value) -> AppResult<Uuid> {
        if workspace_id.trim().is_empty() {
            return Err(AppError::invalid("workspace_id is required"));
        }
        if card.is_null() {
            return Err(AppError::invalid("agent_card is required"));
        }
        cap_card(card)?;
        let id = parse_workspace_id(workspace_id)?;
        Ok(id)
    }

    pub async fn update_card(&self, agent: AgentAccess, card: Value) -> AppResult<()> {
        let id = agent.uuid();
        let updated = self
            .store
            .workspace_update_card(id, &card, self.now())
            .await
            .map_err(AppError::internal("failed to update card"))?;
        if updated {
            self.events
                .emit(Event::new(
                    EventType::AgentCardUpdated,
                    id,
                    json!({ "agent_card": card }),
                ))
                .await;
        }
        Ok(())
    }

    /// GET /registry/discover/:id with `X-Workspace-ID: caller`.
    pub async fn discover(&self, caller: AgentAccess, target: Uuid) -> AppResult<Discovered> {
        let caller = caller.uuid();
        if !self.hierarchy.can_communicate(caller, target).await {
            return Err(AppError::forbidden(
                "not authorized to discover this workspace",
            ));
        }
        let row = self.workspace_row(target).await?;
        if row.runtime.is_external()
            && let Some(url) = row.url.clone().filter(|u| !u.is_empty())
        {
            let caller_external = matches!(self.store.workspace_get(caller).await, Ok(Some(c)) if c.runtime.is_external());
            let url = if caller_external {
                url
            } else {
                docker_host_url(&url)
            };
            return Ok(Discovered {
                id: target,
                url,
                name: row.name,
            });
        }
        if let Some(url) = self.urls.internal(target) {
            return Ok(Discovered {
                id: target,
                url,
                name: row.name,
            });
        }
        if row.status.is_live() {
            let url = format!("http://{}:8000", container_name(target));
            self.urls.set_internal(target, url.clone());
            return Ok(Discovered {
                id: target,
                url,
                name: row.name,
            });
        }
        Err(AppError::WorkspaceUnavailable { status: row.status })
    }

    /// GET /registry/:id/peers: siblings (all other roots for a root),
    /// direct children, then the parent.
    pub async fn peers(&self, agent: AgentAccess) -> AppResult<Vec<Peer>> {
        let id = agent.uuid();
        let me = self.workspace_row(id).await?;
        let q = AppError::internal("query failed");
        let siblings = self
            .store
            .workspace_list_children(me.parent_id)
            .await
            .map_err(q)?;
        let children = self
            .store
            .workspace_list_children(Some(id))
            .await
            .map_err(AppError::internal("query failed"))?;
        let mut out: Vec<Peer> = siblings
            .into_iter()
            .filter(|r| r.id != id)
            .map(peer)
            .collect();
        out.extend(children.into_iter().map(peer));
        if let Some(p) = me.parent_id
            && let Some(parent) = self
                .store
                .workspace_get(p)
                .await
                .map_err(AppError::internal("query failed"))?
            && parent.status != WorkspaceStatus::Removed
        {
            out.push(peer(parent));
        }
        Ok(out)
    }

    /// The checks of `POST /registry/check-access` that need no credential.
    pub fn check_access_request(&self, caller: &str, target: &str) -> AppResult<()> {
        if caller.trim().is_empty() {
            return Err(AppError::invalid("caller_id is required"));
        }
        if target.trim().is_empty() {
            return Err(AppError::invalid("target_id is required"));
        }
        Ok(())
    }

    /// POST /registry/check-access (who may ask: [`AccessQuery`]).
    pub async fn check_access(
        &self,
        _: AccessQuery,
        caller: &str,
        target: &str,
    ) -> AppResult<bool> {
        if caller == target {
            return Ok(true);
        }
        match (caller.parse::<Uuid>(), target.parse::<Uuid>()) {
            (Ok(c), Ok(t)) => Ok(self.hierarchy.can_communicate(c, t).await),
            _ => Ok(false),
        }
    }
}

/// For containers, a loopback URL of an external agent means the Docker host.
fn docker_host_url(url: &str) -> String {
    for host in ["127.0.0.1", "localhost"] {
        if let Some(i) = url.find(host) {
            return format!(
                "{}host.docker.internal{}",
                &url[..i],
                &url[i + host.len()..]
            );
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use WorkspaceStatus::*;

    #[test]
    fn heartbeat_status_table() {
        let cases = [
            (Online, 0.0, None),
            (Online, 0.49, None),
            (Online, 0.5, Some(Degraded)),
            (Degraded, 0.3, None),
            (Degraded, 0.09, Some(Online)),
            (Offline, 0.9, Some(Online)),
            (Provisioning, 0.0, None),
            (Failed, 0.0, None),
            (Paused, 0.0, None),
            (Removed, 0.0, None),
        ];
        for (from, rate, want) in cases {
            let got = heartbeat_transition(from, rate);
            assert_eq!(got.map(Transition::to), want, "{from} @ {rate}");
            // The transition is a compare-and-set on the status just read.
            assert!(got.is_none_or(|t| t.allows(from)), "{from} @ {rate}");
        }
    }

    #[test]
    fn docker_host_rewrite() {
        assert_eq!(
            docker_host_url("http://127.0.0.1:9000/a"),
            "http://host.docker.internal:9000/a"
        );
        assert_eq!(
            docker_host_url("http://localhost:9000"),
            "http://host.docker.internal:9000"
        );
        assert_eq!(
            docker_host_url("https://agent.example"),
            "https://agent.example"
        );
    }

    /// Only a heartbeat taken after the status change is judged again, and
    /// only the newest one: an older heartbeat, here or recorded, says
    /// nothing about the status another replica has just written.
    #[test]
    fn only_the_newest_heartbeat_after_a_change_is_judged_again() {
        let t = |s: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(s);
        let beat = |s: i64, error_rate: f64| {
            Some(Beat {
                at: t(s),
                error_rate,
                sample_error: String::new(),
            })
        };
        let to = |r: Option<(Transition, Beat)>| r.map(|(t, b)| (t.to(), b.at));
        // Degraded elsewhere at 10; a healthy beat here at 11: back online.
        assert_eq!(
            to(judged_again(Degraded, t(10), [None, beat(11, 0.0)])),
            Some((Online, t(11)))
        );
        // The healthy beat came before the change: it stands.
        assert_eq!(
            to(judged_again(Degraded, t(10), [None, beat(9, 0.0)])),
            None
        );
        // A newer failing beat was recorded by another replica: it wins.
        assert_eq!(
            to(judged_again(
                Degraded,
                t(10),
                [beat(12, 0.9), beat(11, 0.0)]
            )),
            None
        );
        // Taken offline elsewhere; a beat here after the verdict: it lives.
        assert_eq!(
            to(judged_again(Offline, t(10), [beat(5, 0.0), beat(11, 0.0)])),
            Some((Online, t(11)))
        );
        // Paused: heartbeats change nothing.
        assert_eq!(to(judged_again(Paused, t(10), [None, beat(11, 0.0)])), None);
        assert_eq!(to(judged_again(Online, t(10), [None, None])), None);
    }
}
