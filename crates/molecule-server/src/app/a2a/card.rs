//! The agent card at the proxy URL (issue 19, item 1). An A2A client given
//! `…/workspaces/:id/a2a` looks for the card relative to that URL
//! (`…/a2a/.well-known/agent-card.json`, or the older `agent.json`); the
//! platform answers with the target's card whose `url` (and every
//! `additionalInterfaces[].url`) is the proxy URL, so the client keeps
//! talking through the platform. The card is the one the agent registered;
//! a workspace that has none yet (an external agent created with a URL) has
//! its card fetched from the agent's host root.

use bytes::Bytes;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

use super::upstream;
use super::{A2aError, A2aRoute, App, Endpoint, UrlOrigin};

/// How long fetching a card from an agent may take.
const CARD_DEADLINE: Duration = Duration::from_secs(10);

/// The paths a card is served at, newest first.
const CARD_PATHS: [&str; 2] = ["/.well-known/agent-card.json", "/.well-known/agent.json"];

/// `card` with its `url` and every additional interface's `url` set to
/// `proxy_url`.
pub fn rewritten(mut card: Value, proxy_url: &str) -> Value {
    if let Some(obj) = card.as_object_mut() {
        obj.insert("url".into(), Value::String(proxy_url.to_string()));
        if let Some(Value::Array(interfaces)) = obj.get_mut("additionalInterfaces") {
            for i in interfaces.iter_mut() {
                if let Some(io) = i.as_object_mut() {
                    io.insert("url".into(), Value::String(proxy_url.to_string()));
                }
            }
        }
    }
    card
}

/// The JSON-RPC method of the authenticated extended card (A2A 0.3).
pub const EXTENDED_CARD_METHOD: &str = "agent/getAuthenticatedExtendedCard";

/// An `agent/getAuthenticatedExtendedCard` answer with the card's URLs set
/// to `proxy_url`, as the public card at the proxy URL has them; an error
/// answer, or one that is not JSON, passes unchanged.
pub fn rewritten_answer(body: Bytes, proxy_url: &str) -> Bytes {
    let Ok(mut answer) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    let Some(card) = answer.get_mut("result").filter(|r| r.is_object()) else {
        return body;
    };
    *card = rewritten(card.take(), proxy_url);
    serde_json::to_vec(&answer).map_or(body, Bytes::from)
}

impl App {
    /// The target's card with the proxy URL in it. `route` proves the
    /// caller may reach the target (the proxy's own rule).
    pub async fn proxied_card(&self, route: &A2aRoute, proxy_url: &str) -> Result<Value, A2aError> {
        let id = route.target();
        let row = self
            .store
            .workspace_get(id)
            .await
            .map_err(|e| A2aError::Internal(format!("lookup failed: {e}")))?
            .ok_or(A2aError::NotFound)?;
        if row.status == molecule_types::WorkspaceStatus::Removed {
            return Err(A2aError::NotFound);
        }
        let card = match row.agent_card.filter(Value::is_object) {
            Some(card) => card,
            None => {
                self.fetch_card(id, &row.runtime, row.url.as_deref())
                    .await?
            }
        };
        Ok(rewritten(card, proxy_url))
    }

    /// GET the card from the agent's host root, through the proxy's client
    /// (and so its outbound policy for URLs someone supplied).
    pub(super) async fn fetch_card(
        &self,
        id: Uuid,
        runtime: &molecule_types::Runtime,
        url: Option<&str>,
    ) -> Result<Value, A2aError> {
        let url = url.filter(|u| !u.is_empty()).ok_or(A2aError::NoUrl {
            status: "no agent card yet".into(),
        })?;
        let origin = UrlOrigin::of(runtime, url, self.provisioner.is_some());
        let endpoint = Endpoint::parse(url, origin)
            .ok_or_else(|| A2aError::Unreachable(format!("invalid workspace URL {url:?}")))?;
        let deadline = Some(tokio::time::Instant::now() + CARD_DEADLINE);
        let mut last = A2aError::NotFound;
        for path in CARD_PATHS {
            let req = upstream::get(&endpoint, path).ok_or(A2aError::NotFound)?;
            let answer = match self.a2a_http.whole(&endpoint, req, deadline).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(workspace_id = %id, error = ?e, "agent card fetch failed");
                    return Err(A2aError::Unreachable("agent card fetch failed".into()));
                }
            };
            match (answer.status.is_success(), answer.body) {
                (true, Ok(bytes)) => match serde_json::from_slice::<Value>(&bytes) {
                    Ok(card) if card.is_object() => return Ok(card),
                    _ => {
                        last = A2aError::Unreachable("the agent's card is not a JSON object".into())
                    }
                },
                (_, Err(e)) => last = e,
                (false, _) => {}
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_extended_card_answer_points_at_the_proxy_and_errors_pass() {
        let answer =
            json!({"jsonrpc": "2.0", "id": 3, "result": {"name": "x", "url": "http://in:1"}});
        let out = rewritten_answer(Bytes::from(answer.to_string()), "http://p/a2a");
        let out: Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(out["result"]["url"], "http://p/a2a");
        assert_eq!(out["id"], 3);
        let error = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32007,"message":"no"}}"#,
        );
        assert_eq!(rewritten_answer(error.clone(), "http://p/a2a"), error);
        let junk = Bytes::from_static(b"not json");
        assert_eq!(rewritten_answer(junk.clone(), "http://p/a2a"), junk);
    }

    #[test]
    fn every_url_of_the_card_points_at_the_proxy() {
        let card = json!({
            "name": "a",
            "url": "http://10.0.0.5:8000",
            "additionalInterfaces": [
                {"transport": "JSONRPC", "url": "http://10.0.0.5:8000"},
                {"transport": "GRPC", "url": "grpc://10.0.0.5:9000"}
            ],
            "skills": [{"id": "s", "url": "kept"}]
        });
        let out = rewritten(card, "http://platform/workspaces/x/a2a");
        assert_eq!(out["url"], "http://platform/workspaces/x/a2a");
        assert_eq!(
            out["additionalInterfaces"][1]["url"],
            "http://platform/workspaces/x/a2a"
        );
        assert_eq!(
            out["skills"][0]["url"], "kept",
            "only interface URLs change"
        );
        assert_eq!(
            rewritten(json!("not an object"), "u"),
            json!("not an object")
        );
    }
}
