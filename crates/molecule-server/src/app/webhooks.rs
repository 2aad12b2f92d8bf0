//! `POST /webhooks/github[/:id]` (api-contract §5.17): a signed GitHub
//! delivery becomes an A2A `message/send` to a workspace, as the caller
//! `webhook:github`. The signature (`X-Hub-Signature-256`, HMAC-SHA256 of
//! the body with `GITHUB_WEBHOOK_SECRET`) is checked in constant time before
//! anything is read; a delivery id (`X-GitHub-Delivery`) is taken once, so a
//! captured request replayed later reaches no agent (the reference has no
//! such check; docs/compat.md).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

use crate::app::App;
use crate::app::a2a::{A2aError, A2aReply, Caller};
use crate::app::auth::secrets_equal;
use crate::error::AppError;

/// How long the agent has to answer a delivery.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// Delivery ids are remembered this long (GitHub redelivers for days).
pub const DELIVERY_RETENTION: chrono::Duration = chrono::Duration::days(30);

/// What a delivery came with.
pub struct GithubDelivery<'a> {
    pub signature: Option<&'a str>,
    pub event: Option<&'a str>,
    pub delivery_id: Option<&'a str>,
    pub body: &'a [u8],
    /// `/webhooks/github/:id`.
    pub workspace: Option<Uuid>,
}

/// How a delivery ended, short of an error.
pub enum WebhookOutcome {
    /// Not an event that wakes an agent.
    Ignored(&'static str),
    /// The agent's answer, passed through as the proxy would.
    Forwarded(A2aReply),
}

/// Why a delivery was refused.
pub enum WebhookError {
    App(AppError),
    A2a(A2aError),
}

impl From<AppError> for WebhookError {
    fn from(e: AppError) -> Self {
        WebhookError::App(e)
    }
}

/// HMAC-SHA256 (RFC 2104) of `body` under `key`, as lowercase hex.
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(body)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// The text an agent gets for a GitHub event, or `None` when the event (or
/// its action) is not one that wakes an agent.
fn summarise(event: &str, p: &Value) -> Option<String> {
    let repo = p["repository"]["full_name"].as_str().unwrap_or("?");
    let who = p["sender"]["login"].as_str().unwrap_or("someone");
    match event {
        "issue_comment" if p["action"] == "created" => Some(format!(
            "GitHub: {who} commented on {repo}#{} ({}): {}\n{}",
            p["issue"]["number"],
            p["issue"]["title"].as_str().unwrap_or_default(),
            p["comment"]["body"].as_str().unwrap_or_default(),
            p["comment"]["html_url"].as_str().unwrap_or_default(),
        )),
        "pull_request_review_comment" if p["action"] == "created" => Some(format!(
            "GitHub: {who} reviewed {repo}#{} ({}) at {}: {}\n{}",
            p["pull_request"]["number"],
            p["pull_request"]["title"].as_str().unwrap_or_default(),
            p["comment"]["path"].as_str().unwrap_or_default(),
            p["comment"]["body"].as_str().unwrap_or_default(),
            p["comment"]["html_url"].as_str().unwrap_or_default(),
        )),
        "workflow_run" if p["action"] == "completed" => {
            let conclusion = p["workflow_run"]["conclusion"]
                .as_str()
                .unwrap_or("unknown");
            if matches!(conclusion, "success" | "skipped" | "neutral") {
                return None;
            }
            let sha: String = p["workflow_run"]["head_sha"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(7)
                .collect();
            Some(format!(
                "GitHub: workflow {} on {repo} ({} {sha}) concluded {conclusion}\n{}",
                p["workflow_run"]["name"].as_str().unwrap_or("?"),
                p["workflow_run"]["head_branch"].as_str().unwrap_or("?"),
                p["workflow_run"]["html_url"].as_str().unwrap_or_default(),
            ))
        }
        _ => None,
    }
}

/// `params.metadata` of the message: where it came from and the event's
/// identifiers (subsystems §5.7).
fn metadata(event: &str, delivery_id: &str, p: &Value) -> Value {
    let mut m = json!({
        "source": "github",
        "event": event,
        "action": p["action"],
        "delivery_id": delivery_id,
        "repository": p["repository"]["full_name"],
        "sender": p["sender"]["login"],
    });
    match event {
        "issue_comment" => {
            m["issue_number"] = p["issue"]["number"].clone();
            m["comment_url"] = p["comment"]["html_url"].clone();
        }
        "pull_request_review_comment" => {
            m["pull_request_number"] = p["pull_request"]["number"].clone();
            m["comment_url"] = p["comment"]["html_url"].clone();
        }
        "workflow_run" => {
            let r = &p["workflow_run"];
            m["workflow"] = r["name"].clone();
            m["run_id"] = r["id"].clone();
            m["run_number"] = r["run_number"].clone();
            m["conclusion"] = r["conclusion"].clone();
            m["branch"] = r["head_branch"].clone();
            m["sha"] = r["head_sha"].clone();
            m["url"] = r["html_url"].clone();
            m["trigger"] = r["event"].clone();
        }
        _ => {}
    }
    m
}

impl App {
    pub async fn github_webhook(
        &self,
        d: GithubDelivery<'_>,
    ) -> Result<WebhookOutcome, WebhookError> {
        let Some(secret) = self.config.github_webhook_secret.as_deref() else {
            return Err(AppError::Unavailable("GITHUB_WEBHOOK_SECRET is not set").into());
        };
        let expected = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), d.body));
        if !d
            .signature
            .is_some_and(|s| secrets_equal(s.trim(), &expected))
        {
            return Err(AppError::Unauthenticated("invalid webhook signature".into()).into());
        }
        let payload: Value = serde_json::from_slice(d.body)
            .map_err(|e| AppError::invalid(format!("invalid payload: {e}")))?;
        if !payload.is_object() {
            return Err(AppError::invalid("invalid payload: not a JSON object").into());
        }
        let event = d.event.unwrap_or_default();
        let Some(text) = summarise(event, &payload) else {
            return Ok(WebhookOutcome::Ignored("unsupported event type"));
        };
        let delivery_id = d
            .delivery_id
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 200)
            .ok_or_else(|| AppError::invalid("X-GitHub-Delivery is required"))?;
        let target = match d.workspace {
            Some(id) => id,
            None => payload["workspace_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| AppError::invalid("missing workspace id"))?,
        };
        let first = self
            .store
            .webhook_delivery_record("github", delivery_id, self.now())
            .await
            .map_err(AppError::internal("failed to record the delivery"))?;
        if !first {
            return Err(AppError::Conflict(format!(
                "delivery {delivery_id} was already processed"
            ))
            .into());
        }
        let body = json!({
            "jsonrpc": "2.0",
            "id": Uuid::new_v4().to_string(),
            "method": "message/send",
            "params": {
                "message": {
                    "role": "user",
                    "messageId": format!("github-{delivery_id}"),
                    "parts": [{ "kind": "text", "text": text }],
                },
                "metadata": metadata(event, delivery_id, &payload),
            },
        });
        let caller = Caller::System("webhook:github".into());
        self.a2a_call(target, caller, body, WEBHOOK_TIMEOUT, None)
            .await
            .map(WebhookOutcome::Forwarded)
            .map_err(WebhookError::A2a)
    }

    /// Forgets delivery ids past their retention (with the activity
    /// retention task).
    pub async fn purge_webhook_deliveries(&self) -> Result<u64, AppError> {
        self.store
            .webhook_deliveries_purge_before(self.now() - DELIVERY_RETENTION)
            .await
            .map_err(AppError::internal("webhook delivery retention failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_and_githubs_example() {
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // GitHub's documented example (secret "It's a Secret to Everybody").
        assert_eq!(
            hmac_sha256_hex(b"It's a Secret to Everybody", b"Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        // A key longer than a block is hashed first (RFC 4231 case 6).
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn only_the_contracts_events_wake_an_agent() {
        let comment = json!({"action": "created", "repository": {"full_name": "o/r"},
            "sender": {"login": "ana"}, "issue": {"number": 7, "title": "Bug"},
            "comment": {"body": "please look", "html_url": "https://x/1"}});
        let text = summarise("issue_comment", &comment).unwrap();
        assert!(
            text.starts_with("GitHub: ana commented on o/r#7 (Bug): please look"),
            "{text}"
        );
        let mut edited = comment.clone();
        edited["action"] = json!("edited");
        assert_eq!(summarise("issue_comment", &edited), None);
        let run = |c: &str| {
            json!({"action": "completed", "repository": {"full_name": "o/r"},
                "workflow_run": {"name": "ci", "conclusion": c, "head_branch": "main"}})
        };
        assert!(summarise("workflow_run", &run("failure")).is_some());
        assert_eq!(summarise("workflow_run", &run("success")), None);
        assert_eq!(summarise("push", &comment), None);
    }
}
