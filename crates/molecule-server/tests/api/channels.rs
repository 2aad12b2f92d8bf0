//! Channels (issue 16) against local fakes of the Telegram Bot API and the
//! Slack Web API, with a real echo agent behind the workspace: a message
//! reaches the agent and its answer comes back to the same chat (in chunks
//! when long), allowed users are enforced, 429 and 401 are handled, discover
//! lists the chats, and forged, replayed or malformed webhooks reach
//! nothing.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

use crate::a2a::agent_workspace;
use crate::{TestServer, eventually, start_with};
use molecule_client::{Client, Method};
use molecule_server::app::webhooks::hmac_sha256_hex;

fn good_token(n: u8) -> String {
    format!("{n}00:{}", "A".repeat(34))
}

/// A fake platform: records every call, serves queued Telegram updates,
/// refuses revoked tokens, and answers the next `throttle` sends with 429.
#[derive(Clone, Default)]
struct Fake {
    /// Every call: (token, method, body).
    calls: Arc<Mutex<Vec<(String, String, Value)>>>,
    /// The sends the fake accepted: (method, body).
    delivered: Arc<Mutex<Vec<(String, Value)>>>,
    updates: Arc<Mutex<Vec<Value>>>,
    next_update: Arc<Mutex<i64>>,
    arrived: Arc<Notify>,
    revoked: Arc<Mutex<HashSet<String>>>,
    throttle: Arc<Mutex<u32>>,
}

impl Fake {
    fn push(&self, chat: i64, user: i64, text: &str) {
        let mut n = self.next_update.lock().unwrap();
        *n += 1;
        self.updates.lock().unwrap().push(json!({
            "update_id": *n,
            "message": { "message_id": *n * 10, "text": text,
                "chat": { "id": chat, "type": "group", "title": "ops" },
                "from": { "id": user, "username": format!("user{user}") } },
        }));
        self.arrived.notify_waiters();
    }

    /// The texts sent to `chat` so far (Telegram `sendMessage`, Slack
    /// `chat.postMessage`).
    fn sent_to(&self, chat: &str) -> Vec<String> {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, b)| {
                (m == "sendMessage" && b["chat_id"].as_str() == Some(chat))
                    || (m == "chat.postMessage" && b["channel"].as_str() == Some(chat))
            })
            .map(|(_, b)| b["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn count(&self, method: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, m, _)| m == method)
            .count()
    }
}

async fn telegram(
    State(f): State<Fake>,
    Path((bot, method)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    use axum::http::StatusCode;
    let token = bot.trim_start_matches("bot").to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    f.calls
        .lock()
        .unwrap()
        .push((token.clone(), method.clone(), body.clone()));
    if f.revoked.lock().unwrap().contains(&token) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"})),
        );
    }
    let ok = |result: Value| {
        (
            StatusCode::OK,
            axum::Json(json!({"ok": true, "result": result})),
        )
    };
    match method.as_str() {
        "getMe" => ok(
            json!({"id": 1, "username": "molecule_test_bot", "can_read_all_group_messages": false}),
        ),
        "sendMessage" => {
            let mut t = f.throttle.lock().unwrap();
            if *t > 0 {
                *t -= 1;
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(json!({"ok": false, "error_code": 429,
                        "description": "Too Many Requests", "parameters": {"retry_after": 1}})),
                );
            }
            f.delivered
                .lock()
                .unwrap()
                .push((method.clone(), body.clone()));
            ok(json!({"message_id": 1}))
        }
        "getUpdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            // Long poll: hold the request until an update or a short while.
            for _ in 0..2 {
                let woken = f.arrived.notified();
                let pending: Vec<Value> = f
                    .updates
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
                    .cloned()
                    .collect();
                if !pending.is_empty() {
                    return ok(Value::Array(pending));
                }
                let _ = tokio::time::timeout(Duration::from_millis(500), woken).await;
            }
            ok(json!([]))
        }
        _ => ok(json!(true)),
    }
}

async fn slack(
    State(f): State<Fake>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::Json<Value> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start_matches("Bearer ")
        .to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    f.calls
        .lock()
        .unwrap()
        .push((token.clone(), method.clone(), body.clone()));
    if f.revoked.lock().unwrap().contains(&token) {
        return axum::Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    f.delivered.lock().unwrap().push((method, body));
    axum::Json(json!({"ok": true, "ts": "1.0"}))
}

async fn spawn_fake() -> (String, Fake) {
    let fake = Fake::default();
    let app = Router::new()
        .route("/tg/{bot}/{method}", post(telegram))
        .route("/slack/{method}", post(slack))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, fake)
}

async fn platform() -> (TestServer, Fake) {
    let (url, fake) = spawn_fake().await;
    let t = start_with(move |c| {
        c.telegram_api_url = format!("{url}/tg");
        c.slack_api_url = format!("{url}/slack");
    })
    .await;
    (t, fake)
}

async fn call(c: &Client, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let r = c.request(method, path, body.as_ref()).await.unwrap();
    (r.status, r.json().unwrap_or(Value::Null))
}

/// Waits until `chat` received a text satisfying `pred`.
async fn wait_sent(
    fake: &Fake,
    chat: &str,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> Vec<String> {
    eventually(Duration::from_secs(30), || async {
        let sent = fake.sent_to(chat);
        sent.iter().any(|s| pred(s)).then_some(sent)
    })
    .await
    .unwrap_or_else(|| panic!("{what} never reached chat {chat}: {:?}", fake.sent_to(chat)))
}

#[tokio::test]
async fn telegram_messages_reach_the_agent_and_answers_come_back() {
    let (t, fake) = platform().await;
    let (ws, token, _agent) = agent_workspace(&t, "teller", None).await;
    let c = t.as_workspace(ws, &token);
    let base = format!("/workspaces/{ws}/channels");
    let (s, created) = call(
        &c,
        Method::POST,
        &base,
        Some(json!({
            "channel_type": "telegram",
            "config": { "bot_token": good_token(1), "chat_id": "100, 200" },
            "allowed_users": ["7"],
        })),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let cid = created["id"].as_str().unwrap().to_string();

    // Listed with the token masked; stored sealed or not, never shown whole.
    let (_, list) = call(&c, Method::GET, &base, None).await;
    assert_eq!(list[0]["config"]["bot_token"], "100:...AAAA", "{list}");
    assert_eq!(list[0]["allowed_users"], json!(["7"]));

    // A blocked user first, then an allowed one, in one batch.
    fake.push(100, 8, "from a stranger");
    fake.push(100, 7, "hello agent");
    wait_sent(&fake, "100", "the echo", |s| s == "echo: hello agent").await;
    assert!(
        !fake.sent_to("100").iter().any(|s| s.contains("stranger")),
        "the stranger's message reached the agent"
    );
    // Typing was shown while the agent worked.
    assert!(fake.count("sendChatAction") >= 1);

    // A long answer comes back in chunks of at most 4096 characters.
    let long = "x".repeat(5000);
    fake.push(200, 7, &long);
    let sent = eventually(Duration::from_secs(30), || async {
        let sent = fake.sent_to("200");
        (sent.len() >= 2).then_some(sent)
    })
    .await
    .expect("a chunked answer");
    assert!(
        sent.iter().all(|s| s.chars().count() <= 4096),
        "{:?}",
        sent.iter().map(|s| s.len()).collect::<Vec<_>>()
    );
    assert_eq!(sent.concat().len(), "echo: ".len() + 5000);

    // 429 on the next send: the answer waits retry_after and arrives.
    *fake.throttle.lock().unwrap() = 1;
    fake.push(100, 7, "slow down");
    let t0 = std::time::Instant::now();
    wait_sent(&fake, "100", "the throttled echo", |s| {
        s == "echo: slow down"
    })
    .await;
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "the answer waited the 429's retry_after"
    );
    assert_eq!(*fake.throttle.lock().unwrap(), 0);

    // Local commands are answered by the platform, not the agent.
    fake.push(100, 7, "/start@molecule_test_bot");
    wait_sent(&fake, "100", "the /start reply", |s| {
        s.starts_with("Connected to teller")
    })
    .await;

    // The agent saw the conversation so far (history in the metadata) —
    // and each message raised CHANNEL_MESSAGE both ways.
    let events = eventually(Duration::from_secs(10), || async {
        let events = t.client.events(Some(ws)).await.ok()?;
        let dirs: Vec<String> = events
            .iter()
            .filter(|e| e.event_type == "CHANNEL_MESSAGE")
            .map(|e| {
                e.payload["direction"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        (dirs.contains(&"inbound".to_string()) && dirs.contains(&"outbound".to_string()))
            .then_some(dirs)
    })
    .await;
    assert!(events.is_some(), "CHANNEL_MESSAGE inbound and outbound");

    // Send and test go to every chat of the channel.
    let (s, _) = call(
        &c,
        Method::POST,
        &format!("{base}/{cid}/send"),
        Some(json!({"text": "broadcast"})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(fake.sent_to("100").contains(&"broadcast".to_string()));
    assert!(fake.sent_to("200").contains(&"broadcast".to_string()));
    let (s, body) = call(&c, Method::POST, &format!("{base}/{cid}/test"), None).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("ok")));
    let (s, e) = call(
        &c,
        Method::POST,
        &format!("{base}/{cid}/send"),
        Some(json!({})),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("text is required")));
}

#[tokio::test]
async fn a_revoked_bot_token_recovers_when_the_token_is_fixed() {
    let (t, fake) = platform().await;
    let (ws, token, _agent) = agent_workspace(&t, "revoked", None).await;
    let c = t.as_workspace(ws, &token);
    let bad = good_token(2);
    fake.revoked.lock().unwrap().insert(bad.clone());
    let base = format!("/workspaces/{ws}/channels");
    let (s, created) = call(
        &c,
        Method::POST,
        &base,
        Some(json!({
            "channel_type": "telegram", "config": { "bot_token": bad, "chat_id": "300" },
        })),
    )
    .await;
    assert_eq!(s, 201);
    let cid = created["id"].as_str().unwrap().to_string();
    // The poller shows the refusal in /admin/liveness and keeps trying.
    let state = eventually(Duration::from_secs(20), || async {
        let l = t.client.liveness().await.ok()?;
        let p = l.channels.get(&cid)?;
        (p.state == "unauthorized").then(|| p.clone())
    })
    .await
    .expect("the poller reports the rejected token");
    let error = state.last_error.unwrap_or_default();
    assert!(error.contains("Unauthorized"), "{error}");
    assert!(!error.contains(&bad), "no token in errors");

    // A fixed token: the channel works again.
    let (s, _) = call(
        &c,
        Method::PATCH,
        &format!("{base}/{cid}"),
        Some(json!({
            "config": { "bot_token": good_token(3), "chat_id": "300" },
        })),
    )
    .await;
    assert_eq!(s, 200);
    fake.push(300, 1, "are you back?");
    wait_sent(&fake, "300", "the echo after the fix", |s| {
        s == "echo: are you back?"
    })
    .await;

    // A bad config is refused; a disabled channel stops polling.
    let (s, e) = call(
        &c,
        Method::PATCH,
        &format!("{base}/{cid}"),
        Some(json!({"config": {"bot_token": "nope"}})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    let (s, _) = call(
        &c,
        Method::PATCH,
        &format!("{base}/{cid}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(s, 200);
    let gone = eventually(Duration::from_secs(20), || async {
        let l = t.client.liveness().await.ok()?;
        (!l.channels.contains_key(&cid)).then_some(())
    })
    .await;
    assert!(gone.is_some(), "the disabled channel's poller stopped");
}

#[tokio::test]
async fn crud_checks_ownership_duplicates_and_bad_input() {
    let (t, _fake) = platform().await;
    let (ws, token, _a) = agent_workspace(&t, "owner", None).await;
    let (other, other_token, _b) = agent_workspace(&t, "other", None).await;
    let c = t.as_workspace(ws, &token);
    let base = format!("/workspaces/{ws}/channels");
    let (s, adapters) = call(&t.client, Method::GET, "/channels/adapters", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        adapters,
        json!([
            {"type": "telegram", "display_name": "Telegram"},
            {"type": "slack", "display_name": "Slack"},
        ])
    );
    for (body, want) in [
        (json!({}), "channel_type is required"),
        (
            json!({"channel_type": "fax"}),
            "unsupported channel_type: fax",
        ),
        (
            json!({"channel_type": "telegram", "config": {"bot_token": "x"}}),
            "invalid config",
        ),
        (
            json!({"channel_type": "telegram", "config": {"bot_token": good_token(4)}}),
            "chat_id is required",
        ),
        (
            json!({"channel_type": "slack", "config": {"bot_token": "xoxb-123456789", "channel_id": "C1"}}),
            "signing_secret",
        ),
    ] {
        let (s, e) = call(&c, Method::POST, &base, Some(body)).await;
        assert_eq!(s, 400, "{e}");
        assert!(e["error"].as_str().unwrap().contains(want), "{e} vs {want}");
    }
    let tg = json!({"channel_type": "telegram", "config": {"bot_token": good_token(4), "chat_id": "1", "mode": "webhook"}});
    let (s, created) = call(&c, Method::POST, &base, Some(tg.clone())).await;
    assert_eq!(s, 201);
    let cid = created["id"].as_str().unwrap();
    let (s, _) = call(&c, Method::POST, &base, Some(tg)).await;
    assert_eq!(s, 409, "one channel per workspace and type");
    // Another workspace's token cannot touch it, nor name it under its own id.
    let o = t.as_workspace(other, &other_token);
    let (s, _) = call(&o, Method::DELETE, &format!("{base}/{cid}"), None).await;
    assert_eq!(s, 401);
    let (s, _) = call(
        &o,
        Method::POST,
        &format!("/workspaces/{other}/channels/{cid}/send"),
        Some(json!({"text": "x"})),
    )
    .await;
    assert_eq!(s, 404, "channel ownership is checked");
    let (s, _) = call(
        &c,
        Method::PATCH,
        &format!("{base}/not-a-uuid"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 404);
    let r = c
        .raw(Method::POST, base.clone())
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let (s, _) = call(&c, Method::DELETE, &format!("{base}/{cid}"), None).await;
    assert_eq!(s, 200);
    let (s, _) = call(&c, Method::DELETE, &format!("{base}/{cid}"), None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn discover_lists_the_bots_chats_and_answers_start() {
    let (t, fake) = platform().await;
    let ws = t.create("finder", None).await;
    fake.push(555, 9, "/start");
    fake.push(556, 9, "hi");
    let (s, found) = call(
        &t.client,
        Method::POST,
        "/channels/discover",
        Some(json!({
            "channel_type": "telegram", "bot_token": good_token(5), "workspace_id": ws,
        })),
    )
    .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["bot_username"], "molecule_test_bot");
    let chats: Vec<&str> = found["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["chat_id"].as_str().unwrap())
        .collect();
    assert_eq!(chats, ["555", "556"]);
    assert!(found["privacy_warning"].is_string());
    assert!(
        fake.sent_to("555").iter().any(|s| s.contains("555")),
        "/start answered with the chat id"
    );
    let (s, _) = call(
        &t.client,
        Method::POST,
        "/channels/discover",
        Some(json!({"workspace_id": ws})),
    )
    .await;
    assert_eq!(s, 400);
    fake.revoked.lock().unwrap().insert(good_token(6));
    let (s, e) = call(
        &t.client,
        Method::POST,
        "/channels/discover",
        Some(json!({
            "bot_token": good_token(6), "workspace_id": ws,
        })),
    )
    .await;
    assert_eq!(s, 400, "{e}");
}

#[tokio::test]
async fn telegram_webhooks_need_the_channels_secret() {
    let (t, fake) = platform().await;
    let (ws, token, _agent) = agent_workspace(&t, "hooked", None).await;
    let c = t.as_workspace(ws, &token);
    let (s, _) = call(&c, Method::POST, &format!("/workspaces/{ws}/channels"), Some(json!({
        "channel_type": "telegram",
        "config": { "bot_token": good_token(7), "chat_id": "700", "mode": "webhook", "webhook_secret": "hook-secret" },
    })))
    .await;
    assert_eq!(s, 201);
    let update = |text: &str| {
        json!({"update_id": 1, "message": {"message_id": 5, "text": text,
        "chat": {"id": 700, "type": "private"}, "from": {"id": 1, "username": "ana"}}})
    };
    let post = |secret: Option<&str>, body: Vec<u8>| {
        let mut r = t
            .client
            .raw(Method::POST, "/webhooks/telegram")
            .header("content-type", "application/json");
        if let Some(s) = secret {
            r = r.header("x-telegram-bot-api-secret-token", s);
        }
        r.body(body).send()
    };
    let body = |text: &str| serde_json::to_vec(&update(text)).unwrap();
    let r = post(Some("wrong"), body("forged")).await.unwrap();
    assert_eq!(r.json().unwrap()["status"], "no_channel");
    let r = post(None, body("unsigned")).await.unwrap();
    assert_eq!(r.json().unwrap()["status"], "no_channel");
    let r = post(Some("hook-secret"), body("via webhook"))
        .await
        .unwrap();
    assert_eq!(r.json().unwrap()["status"], "accepted");
    wait_sent(&fake, "700", "the echo", |s| s == "echo: via webhook").await;
    assert!(
        !fake
            .sent_to("700")
            .iter()
            .any(|s| s.contains("forged") || s.contains("unsigned"))
    );
    let r = post(Some("hook-secret"), b"{not json".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let r = post(
        Some("hook-secret"),
        serde_json::to_vec(&json!({"update_id": 2, "edited_message": {}})).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.json().unwrap()["status"], "ignored");
    let r = t
        .client
        .raw(Method::POST, "/webhooks/fax")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(
        fake.count("getUpdates"),
        0,
        "a webhook-mode channel is not polled"
    );
}

fn slack_sign(secret: &str, ts: i64, body: &[u8]) -> String {
    let mut base = format!("v0:{ts}:").into_bytes();
    base.extend_from_slice(body);
    format!("v0={}", hmac_sha256_hex(secret.as_bytes(), &base))
}

#[tokio::test]
async fn slack_events_are_verified_answered_and_never_replayed() {
    let (t, fake) = platform().await;
    let (ws, token, _agent) = agent_workspace(&t, "slacker", None).await;
    let c = t.as_workspace(ws, &token);
    let secret = "slack-signing-secret";
    let (s, created) = call(&c, Method::POST, &format!("/workspaces/{ws}/channels"), Some(json!({
        "channel_type": "slack",
        "config": { "bot_token": "xoxb-1-2-abcdef", "signing_secret": secret, "channel_id": "C42" },
    })))
    .await;
    assert_eq!(s, 201, "{created}");
    let now = chrono::Utc::now().timestamp();
    let post = |body: Vec<u8>, ts: i64, sig: String| {
        t.client
            .raw(Method::POST, "/webhooks/slack")
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sig)
            .body(body)
            .send()
    };
    // The URL check Slack makes when the endpoint is configured.
    let check =
        serde_json::to_vec(&json!({"type": "url_verification", "challenge": "ch-1"})).unwrap();
    let r = post(check.clone(), now, slack_sign(secret, now, &check))
        .await
        .unwrap();
    assert_eq!(r.json().unwrap()["challenge"], "ch-1");

    let event = |id: &str, text: &str| {
        serde_json::to_vec(&json!({"type": "event_callback", "event_id": id, "team_id": "T1",
            "event": {"type": "message", "channel": "C42", "user": "U7", "text": text, "ts": "17.1"}})).unwrap()
    };
    let e1 = event("Ev1", "hello slack");
    let r = post(e1.clone(), now, slack_sign(secret, now, &e1))
        .await
        .unwrap();
    assert_eq!(r.json().unwrap()["status"], "accepted");
    wait_sent(&fake, "C42", "the echo", |s| s == "echo: hello slack").await;
    let posted = fake
        .calls
        .lock()
        .unwrap()
        .iter()
        .find(|(_, m, _)| m == "chat.postMessage")
        .cloned()
        .unwrap();
    assert_eq!(posted.0, "xoxb-1-2-abcdef", "the bot token is the bearer");

    // Replayed, forged, stale or unsigned: refused, nothing reaches the agent.
    let r = post(e1.clone(), now, slack_sign(secret, now, &e1))
        .await
        .unwrap();
    assert_eq!(r.status, 409);
    let e2 = event("Ev2", "forged");
    let r = post(e2.clone(), now, slack_sign("not-the-secret", now, &e2))
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    let old = now - 600;
    let r = post(e2.clone(), old, slack_sign(secret, old, &e2))
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    let r = t
        .client
        .raw(Method::POST, "/webhooks/slack")
        .body(e2.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    let bad = b"{not json".to_vec();
    let r = post(bad.clone(), now, slack_sign(secret, now, &bad))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let bot = serde_json::to_vec(&json!({"type": "event_callback", "event_id": "Ev3",
        "event": {"type": "message", "channel": "C42", "bot_id": "B1", "text": "echo: loop"}}))
    .unwrap();
    let r = post(bot.clone(), now, slack_sign(secret, now, &bot))
        .await
        .unwrap();
    assert_eq!(
        r.json().unwrap()["status"],
        "ignored",
        "the bot's own messages do not loop"
    );
    assert_eq!(fake.sent_to("C42"), ["echo: hello slack"]);
}

/// With a secrets key the tokens are sealed in the database; in production
/// a Telegram channel without a webhook secret takes no webhook posts.
#[tokio::test]
async fn tokens_are_sealed_at_rest_and_production_refuses_secretless_webhooks() {
    use molecule_server::app::resources::secret_box::SecretsKey;
    use molecule_types::dto::CreateWorkspace;
    let (url, fake) = spawn_fake().await;
    let t = start_with(move |c| {
        c.telegram_api_url = format!("{url}/tg");
        c.slack_api_url = format!("{url}/slack");
        c.secrets_key = Some(SecretsKey::from_bytes([9; 32]));
        crate::production(c);
    })
    .await;
    let admin = t.admin();
    let req = CreateWorkspace {
        name: "sealed".into(),
        ..Default::default()
    };
    let ws = admin.create_workspace(&req).await.unwrap().id;
    let token = good_token(8);
    let (s, created) = call(
        &admin,
        Method::POST,
        &format!("/workspaces/{ws}/channels"),
        Some(json!({
            "channel_type": "telegram",
            "config": { "bot_token": token, "chat_id": "900", "mode": "webhook" },
        })),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().parse().unwrap();
    let row = t.store().await.channel_get(id).await.unwrap().unwrap();
    let stored = row.config["bot_token"].as_str().unwrap();
    assert!(stored.starts_with("ec1:"), "{stored}");
    assert!(!stored.contains(&token[4..]), "the token is not in the row");
    let update = json!({"update_id": 1, "message": {"message_id": 1, "text": "hi",
        "chat": {"id": 900, "type": "private"}, "from": {"id": 1}}});
    let r = t
        .client
        .raw(Method::POST, "/webhooks/telegram")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&update).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.json().unwrap()["status"], "no_channel");
    assert!(fake.sent_to("900").is_empty());
}
