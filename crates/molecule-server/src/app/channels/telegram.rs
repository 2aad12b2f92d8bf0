//! Telegram (the Bot API at `TELEGRAM_API_URL`): config `bot_token`
//! (`<digits>:<30+ of [A-Za-z0-9_-]>`), `chat_id` (comma-separated),
//! optional `webhook_secret` and `mode` (`polling`, the default, or
//! `webhook`). Long polls `getUpdates` for 30 s; answers in Markdown chunks
//! of at most 4 096 characters; a 429 waits its `retry_after` and retries
//! once, any other refusal but 401/403 retries once as plain text.

use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

use super::{Adapter, ApiError, Inbound, Membership, Polled, chunks};
use crate::app::App;

pub struct Telegram;

/// Longest message the Bot API takes.
const MAX_MESSAGE: usize = 4096;
/// `getUpdates`' long-poll window.
const POLL_SECONDS: u64 = 30;

fn token_ok(t: &str) -> bool {
    let Some((digits, rest)) = t.split_once(':') else {
        return false;
    };
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && rest.len() >= 30
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One Bot API call: its `result`, or why not.
async fn call(
    app: &App,
    token: &str,
    method: &str,
    body: &Value,
    timeout: Duration,
) -> Result<Value, ApiError> {
    let url = format!("{}/bot{token}/{method}", app.config.telegram_api_url);
    let answer = app
        .json_api(&url, method, Some(body), None, timeout)
        .await
        .map_err(ApiError::Other)?;
    if answer.status == 200 && answer.json["ok"] == true {
        return Ok(answer.json["result"].clone());
    }
    let description = answer.json["description"]
        .as_str()
        .unwrap_or("no description")
        .to_string();
    Err(match answer.status {
        401 | 404 => ApiError::Unauthorized(format!("{method}: {description}")),
        429 => ApiError::RateLimited(
            answer.json["parameters"]["retry_after"]
                .as_u64()
                .or(answer.retry_after)
                .unwrap_or(5),
        ),
        s => ApiError::Other(format!("{method}: HTTP {s}: {description}")),
    })
}

fn token(config: &Value) -> &str {
    config["bot_token"].as_str().unwrap_or_default()
}

/// A Telegram update as a message, a membership change, or nothing.
pub fn parse_update(u: &Value) -> (Option<Inbound>, Option<Membership>) {
    if let Some(m) = u.get("my_chat_member") {
        let chat_id = m["chat"]["id"].to_string();
        let title = m["chat"]["title"]
            .as_str()
            .or(m["chat"]["first_name"].as_str())
            .unwrap_or("there")
            .to_string();
        return match m["new_chat_member"]["status"].as_str() {
            Some("member" | "administrator") => (None, Some(Membership::Added { chat_id, title })),
            Some("left" | "kicked") => (None, Some(Membership::Removed { chat_id })),
            _ => (None, None),
        };
    }
    let Some(m) = u.get("message").or(u.get("channel_post")) else {
        return (None, None);
    };
    let Some(text) = m["text"].as_str().filter(|t| !t.trim().is_empty()) else {
        return (None, None);
    };
    let from = &m["from"];
    let username = from["username"]
        .as_str()
        .or(from["first_name"].as_str())
        .or(m["chat"]["title"].as_str())
        .unwrap_or_default()
        .to_string();
    let msg = Inbound {
        chat_id: m["chat"]["id"].to_string(),
        user_id: if from.is_object() {
            from["id"].to_string()
        } else {
            String::new()
        },
        username,
        text: text.to_string(),
        message_id: m["message_id"].to_string(),
        extra: json!({ "chat_type": m["chat"]["type"], "update_id": u["update_id"] }),
    };
    (Some(msg), None)
}

#[async_trait]
impl Adapter for Telegram {
    fn kind(&self) -> &'static str {
        "telegram"
    }
    fn display_name(&self) -> &'static str {
        "Telegram"
    }
    fn secret_fields(&self) -> &'static [&'static str] {
        &["bot_token", "webhook_secret"]
    }

    fn validate(&self, c: &Value) -> Result<(), String> {
        if !c["bot_token"].as_str().is_some_and(token_ok) {
            return Err("bot_token must look like 123456:ABC… (digits, a colon, 30 or more letters, digits, _ or -)".into());
        }
        if self.chats(c).is_empty() {
            return Err("chat_id is required (one id, or several separated by commas)".into());
        }
        match c["mode"].as_str() {
            None | Some("polling") | Some("webhook") => {}
            Some(other) => return Err(format!("mode must be polling or webhook, not {other:?}")),
        }
        if !matches!(c["webhook_secret"], Value::Null | Value::String(_)) {
            return Err("webhook_secret must be a string".into());
        }
        Ok(())
    }

    fn parse_inbound(&self, update: &Value) -> Option<Inbound> {
        parse_update(update).0
    }

    fn chats(&self, c: &Value) -> Vec<String> {
        match &c["chat_id"] {
            Value::String(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Value::Number(n) => vec![n.to_string()],
            _ => Vec::new(),
        }
    }

    async fn send(&self, app: &App, c: &Value, chat: &str, text: &str) -> Result<(), ApiError> {
        for piece in chunks(text, MAX_MESSAGE) {
            let markdown = json!({
                "chat_id": chat, "text": piece, "parse_mode": "Markdown",
                "disable_web_page_preview": true,
            });
            let timeout = Duration::from_secs(15);
            match call(app, token(c), "sendMessage", &markdown, timeout).await {
                Ok(_) => continue,
                Err(ApiError::RateLimited(secs)) => {
                    tokio::time::sleep(Duration::from_secs(secs.min(60))).await;
                    call(app, token(c), "sendMessage", &markdown, timeout).await?;
                }
                Err(e @ ApiError::Unauthorized(_)) => return Err(e),
                Err(ApiError::Other(e)) if e.contains("HTTP 403") => {
                    return Err(ApiError::Other(e));
                }
                Err(_) => {
                    // Markdown the API would not parse: once more as plain text.
                    let plain =
                        json!({ "chat_id": chat, "text": piece, "disable_web_page_preview": true });
                    call(app, token(c), "sendMessage", &plain, timeout).await?;
                }
            }
        }
        Ok(())
    }

    async fn typing(&self, app: &App, c: &Value, chat: &str) {
        let body = json!({ "chat_id": chat, "action": "typing" });
        let _ = call(
            app,
            token(c),
            "sendChatAction",
            &body,
            Duration::from_secs(5),
        )
        .await;
    }

    fn polls(&self) -> bool {
        true
    }

    async fn poll(&self, app: &App, c: &Value, offset: i64) -> Result<Polled, ApiError> {
        if offset == 0 {
            // A webhook set on the bot would make getUpdates fail.
            let _ = call(
                app,
                token(c),
                "deleteWebhook",
                &json!({}),
                Duration::from_secs(10),
            )
            .await;
        }
        let body = json!({
            "offset": offset, "timeout": POLL_SECONDS,
            "allowed_updates": ["message", "channel_post", "my_chat_member"],
        });
        let updates = call(
            app,
            token(c),
            "getUpdates",
            &body,
            Duration::from_secs(POLL_SECONDS + 10),
        )
        .await?;
        let chats = self.chats(c);
        let mut polled = Polled {
            next_offset: offset,
            ..Default::default()
        };
        for u in updates.as_array().into_iter().flatten() {
            if let Some(id) = u["update_id"].as_i64() {
                polled.next_offset = polled.next_offset.max(id + 1);
            }
            match parse_update(u) {
                (Some(m), _) if chats.contains(&m.chat_id) => polled.messages.push(m),
                (_, Some(member)) => polled.membership.push(member),
                _ => {}
            }
        }
        Ok(polled)
    }
}

/// `POST /channels/discover`: who the bot is and the chats it sees (a
/// `/start` in a chat is answered with its id).
pub async fn discover(app: &App, token: &str) -> Result<Value, String> {
    if !token_ok(token) {
        return Err("bot_token is malformed".into());
    }
    let t = Duration::from_secs(10);
    let me = call(app, token, "getMe", &json!({}), t)
        .await
        .map_err(|e| e.to_string())?;
    let commands = json!({ "commands": [
        { "command": "start", "description": "Connect this chat and show its id" },
        { "command": "help", "description": "What the bot does" },
        { "command": "reset", "description": "Forget this chat's history" },
        { "command": "cancel", "description": "Stop waiting" },
    ]});
    let _ = call(app, token, "setMyCommands", &commands, t).await;
    let _ = call(app, token, "deleteWebhook", &json!({}), t).await;
    let updates = call(
        app,
        token,
        "getUpdates",
        &json!({ "timeout": 5, "limit": 100 }),
        Duration::from_secs(15),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut chats: BTreeMap<String, Value> = BTreeMap::new();
    for u in updates.as_array().into_iter().flatten() {
        let m = u
            .get("message")
            .or(u.get("channel_post"))
            .or(u.get("my_chat_member"));
        let Some(chat) = m.map(|m| &m["chat"]).filter(|c| c.is_object()) else {
            continue;
        };
        let id = chat["id"].to_string();
        let name = chat["title"]
            .as_str()
            .or(chat["username"].as_str())
            .or(chat["first_name"].as_str())
            .unwrap_or_default();
        chats.insert(
            id.clone(),
            json!({ "chat_id": id, "name": name, "type": chat["type"] }),
        );
        if m.and_then(|m| m["text"].as_str())
            .is_some_and(|t| t.starts_with("/start"))
        {
            let hello = json!({ "chat_id": id, "text": format!("This chat's id is {id}.") });
            let _ = call(app, token, "sendMessage", &hello, t).await;
        }
    }
    let reads_all = me["can_read_all_group_messages"].as_bool().unwrap_or(false);
    Ok(json!({
        "bot_username": me["username"],
        "chats": chats.into_values().collect::<Vec<_>>(),
        "can_read_all_group_messages": reads_all,
        "privacy_warning": if reads_all { Value::Null } else {
            json!("privacy mode is on: in groups the bot only sees commands and replies to it (turn it off with @BotFather)")
        },
        "hint": "send /start in each chat the bot should answer in, then use its chat_id",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_chats_are_checked() {
        let t = Telegram;
        let good = json!({"bot_token": format!("123:{}", "a".repeat(30)), "chat_id": "1, -2"});
        assert_eq!(t.validate(&good), Ok(()));
        assert_eq!(t.chats(&good), ["1", "-2"]);
        assert!(
            t.validate(&json!({"bot_token": "123:short", "chat_id": "1"}))
                .is_err()
        );
        assert!(
            t.validate(&json!({"bot_token": format!("123:{}", "a".repeat(30))}))
                .is_err()
        );
        assert!(
            t.validate(&json!({"bot_token": format!("x:{}", "a".repeat(30)), "chat_id": "1"}))
                .is_err()
        );
    }

    #[test]
    fn updates_become_messages_or_membership() {
        let u = json!({"update_id": 5, "message": {"message_id": 9, "text": "hi",
            "chat": {"id": -100, "type": "group"}, "from": {"id": 7, "username": "ana"}}});
        let (m, _) = parse_update(&u);
        let m = m.unwrap();
        assert_eq!(
            (m.chat_id.as_str(), m.user_id.as_str(), m.username.as_str()),
            ("-100", "7", "ana")
        );
        let added = json!({"my_chat_member": {"chat": {"id": 3, "title": "ops"}, "new_chat_member": {"status": "member"}}});
        assert_eq!(
            parse_update(&added).1,
            Some(Membership::Added {
                chat_id: "3".into(),
                title: "ops".into()
            })
        );
        assert_eq!(parse_update(&json!({"edited_message": {}})), (None, None));
    }
}
