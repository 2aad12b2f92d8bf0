//! Slack (the Web API at `SLACK_API_URL`, the Events API for inbound):
//! config `bot_token` (`xoxb-…`), `signing_secret`, `channel_id`
//! (comma-separated). Messages come only by webhook (`POST
//! /webhooks/slack`): the request is verified with the signing secret
//! (`v0=` HMAC-SHA256 of `v0:<timestamp>:<body>`, in constant time, the
//! timestamp within five minutes) and each event id is taken once. Answers
//! go out with `chat.postMessage` in chunks of at most 3 900 characters.

use async_trait::async_trait;
use serde_json::{Value, json};
use std::time::Duration;

use super::{Adapter, ApiError, Inbound, chunks};
use crate::app::App;
use crate::app::auth::secrets_equal;
use crate::app::webhooks::hmac_sha256_hex;

pub struct Slack;

/// Slack cuts longer texts.
const MAX_MESSAGE: usize = 3900;
/// How old a signed request may be (Slack's own advice).
pub const MAX_SKEW_SECS: i64 = 300;

/// Whether `signature` signs `timestamp` and `body` under `secret`.
pub fn verify(secret: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let mut base = format!("v0:{timestamp}:").into_bytes();
    base.extend_from_slice(body);
    let expected = format!("v0={}", hmac_sha256_hex(secret.as_bytes(), &base));
    secrets_equal(signature.trim(), &expected)
}

/// A message event as an inbound message (`None` for bots, edits and
/// other events).
pub fn parse_event(envelope: &Value) -> Option<Inbound> {
    let e = &envelope["event"];
    if e["type"] != "message" && e["type"] != "app_mention" {
        return None;
    }
    if e.get("bot_id").is_some_and(|b| !b.is_null())
        || e.get("subtype").is_some_and(|s| !s.is_null())
    {
        return None;
    }
    let text = e["text"].as_str().filter(|t| !t.trim().is_empty())?;
    Some(Inbound {
        chat_id: e["channel"].as_str()?.to_string(),
        user_id: e["user"].as_str().unwrap_or_default().to_string(),
        username: e["user"].as_str().unwrap_or_default().to_string(),
        text: text.to_string(),
        message_id: e["ts"].as_str().unwrap_or_default().to_string(),
        extra: json!({ "team_id": envelope["team_id"], "event_id": envelope["event_id"], "thread_ts": e["thread_ts"] }),
    })
}

#[async_trait]
impl Adapter for Slack {
    fn kind(&self) -> &'static str {
        "slack"
    }
    fn display_name(&self) -> &'static str {
        "Slack"
    }
    fn secret_fields(&self) -> &'static [&'static str] {
        &["bot_token", "signing_secret"]
    }

    fn validate(&self, c: &Value) -> Result<(), String> {
        if !c["bot_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("xox") && t.len() > 10)
        {
            return Err("bot_token must be a Slack bot token (xoxb-…)".into());
        }
        if c["signing_secret"].as_str().is_none_or(|s| s.len() < 8) {
            return Err("signing_secret is required (Basic Information → Signing Secret)".into());
        }
        if self.chats(c).is_empty() {
            return Err("channel_id is required (one id, or several separated by commas)".into());
        }
        Ok(())
    }

    fn parse_inbound(&self, envelope: &Value) -> Option<Inbound> {
        parse_event(envelope)
    }

    fn chats(&self, c: &Value) -> Vec<String> {
        c["channel_id"]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    async fn send(&self, app: &App, c: &Value, chat: &str, text: &str) -> Result<(), ApiError> {
        let token = c["bot_token"].as_str().unwrap_or_default();
        let url = format!("{}/chat.postMessage", app.config.slack_api_url);
        for piece in chunks(text, MAX_MESSAGE) {
            let body = json!({ "channel": chat, "text": piece });
            let mut retried = false;
            loop {
                let a = app
                    .json_api(
                        &url,
                        "chat.postMessage",
                        Some(&body),
                        Some(token),
                        Duration::from_secs(15),
                    )
                    .await
                    .map_err(ApiError::Other)?;
                if a.status == 429 && !retried {
                    retried = true;
                    tokio::time::sleep(Duration::from_secs(a.retry_after.unwrap_or(1).min(60)))
                        .await;
                    continue;
                }
                if a.status == 200 && a.json["ok"] == true {
                    break;
                }
                let error = a.json["error"]
                    .as_str()
                    .unwrap_or("unknown_error")
                    .to_string();
                return Err(match (a.status, error.as_str()) {
                    (429, _) => ApiError::RateLimited(a.retry_after.unwrap_or(1)),
                    (_, "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive") => {
                        ApiError::Unauthorized(format!("chat.postMessage: {error}"))
                    }
                    (s, _) => ApiError::Other(format!("chat.postMessage: HTTP {s}: {error}")),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slacks_documented_signature_verifies() {
        // The example of Slack's "Verifying requests" guide.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert!(verify(secret, "1531420618", body, sig));
        assert!(!verify(secret, "1531420619", body, sig));
        assert!(!verify("other", "1531420618", body, sig));
    }

    #[test]
    fn only_peoples_messages_are_inbound() {
        let env =
            |event: Value| json!({"type": "event_callback", "event_id": "Ev1", "event": event});
        let m = parse_event(&env(
            json!({"type": "message", "channel": "C1", "user": "U1", "text": "hi", "ts": "1.2"}),
        ))
        .unwrap();
        assert_eq!(
            (m.chat_id.as_str(), m.text.as_str(), m.message_id.as_str()),
            ("C1", "hi", "1.2")
        );
        assert!(
            parse_event(&env(
                json!({"type": "message", "channel": "C1", "bot_id": "B1", "text": "echo"})
            ))
            .is_none()
        );
        assert!(parse_event(&env(json!({"type": "message", "subtype": "message_changed", "channel": "C1", "text": "x"}))).is_none());
        assert!(parse_event(&env(json!({"type": "reaction_added"}))).is_none());
    }
}
