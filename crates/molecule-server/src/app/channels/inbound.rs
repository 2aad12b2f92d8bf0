//! A chat message's way through the platform: the allowed-users check,
//! the bot's local commands, the chat's recent history, an A2A
//! `message/send` to the workspace as `channel:<type>` (5 min, "typing…"
//! shown every 4 s meanwhile), and the answer sent back to the chat — with
//! `CHANNEL_MESSAGE` events both ways. Messages arrive from a poller or a
//! webhook; each is answered by a job of its own.

use molecule_store::HistoryEntry;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

use super::{Inbound, Membership, OpenChannel, adapter};
use crate::app::App;
use crate::app::a2a::Caller;

/// How long the agent has to answer.
const AGENT_DEADLINE: Duration = Duration::from_secs(300);
/// How often "typing…" is refreshed while the agent works.
const TYPING_EVERY: Duration = Duration::from_secs(4);
/// Turns of a chat kept for the agent, and for how long.
const HISTORY_KEEP: i64 = 10;
const HISTORY_TTL: chrono::Duration = chrono::Duration::hours(24);

impl App {
    /// Hands `msg` to a job of its own (a second delivery of the same
    /// message while the first is answered is dropped).
    pub(crate) fn accept_inbound(&self, ch: &OpenChannel, msg: Inbound) {
        // Decided here, before any job: a message from someone not allowed
        // is dropped by the time its poll or webhook returns.
        let allowed = &ch.row.allowed_users;
        if !allowed.is_empty()
            && ![&msg.user_id, &msg.chat_id, &msg.username]
                .iter()
                .any(|who| !who.is_empty() && allowed.contains(who))
        {
            tracing::info!(channel_id = %ch.row.id, "channel message from a user not allowed: dropped");
            return;
        }
        let app = self.clone();
        let ch = ch.clone();
        let key = (ch.row.id, format!("{}:{}", msg.chat_id, msg.message_id));
        self.channels.message_jobs.launch(key, async move {
            app.handle_inbound(&ch, msg).await;
        });
    }

    async fn handle_inbound(&self, ch: &OpenChannel, msg: Inbound) {
        let Some(adapter) = adapter(&ch.row.channel_type) else {
            return;
        };
        self.channel_sent(&ch.row, &msg.username, "inbound").await;
        if let Some(reply) = self.local_command(ch, &msg).await {
            if let Err(e) = adapter.send(self, &ch.config, &msg.chat_id, &reply).await {
                tracing::warn!(channel_id = %ch.row.id, error = %e, "command reply not sent");
            }
            return;
        }
        let since = self.now() - HISTORY_TTL;
        let history = self
            .store
            .channel_history(ch.row.id, &msg.chat_id, since)
            .await
            .unwrap_or_default();
        let body = json!({
            "jsonrpc": "2.0",
            "id": Uuid::new_v4().to_string(),
            "method": "message/send",
            "params": {
                "message": {
                    "role": "user",
                    "messageId": format!("channel-{}-{}", ch.row.channel_type, msg.message_id),
                    "parts": [{ "kind": "text", "text": msg.text }],
                },
                "metadata": {
                    "source": ch.row.channel_type,
                    "channel_id": ch.row.id,
                    "chat_id": msg.chat_id,
                    "user_id": msg.user_id,
                    "username": msg.username,
                    "message_id": msg.message_id,
                    "history": history.iter().map(|h| json!({ "role": h.role, "text": h.text })).collect::<Vec<_>>(),
                    "extra": msg.extra,
                },
            },
        });
        let caller = Caller::System(format!("channel:{}", ch.row.channel_type));
        let call = self.a2a_call(ch.row.workspace_id, caller, body, AGENT_DEADLINE, None);
        tokio::pin!(call);
        let answer = loop {
            adapter.typing(self, &ch.config, &msg.chat_id).await;
            tokio::select! {
                r = &mut call => break r,
                () = tokio::time::sleep(TYPING_EVERY) => {}
            }
        };
        let reply = match answer {
            Ok(r) if r.is_success() => {
                let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                reply_text(&v)
            }
            Ok(r) => Some(format!("Error: agent returned HTTP {}", r.status)),
            Err(e) => {
                tracing::warn!(channel_id = %ch.row.id, error = %e, "channel message not delivered to the agent");
                None
            }
        };
        let Some(reply) = reply.filter(|r| !r.trim().is_empty()) else {
            return;
        };
        if let Err(e) = adapter.send(self, &ch.config, &msg.chat_id, &reply).await {
            tracing::warn!(channel_id = %ch.row.id, error = %e, "channel reply not sent");
            return;
        }
        for (role, text) in [("user", msg.text.as_str()), ("assistant", reply.as_str())] {
            let entry = HistoryEntry {
                role: role.into(),
                text: text.into(),
                at: self.now(),
            };
            if let Err(e) = self
                .store
                .channel_history_push(ch.row.id, &msg.chat_id, &entry, HISTORY_KEEP)
                .await
            {
                tracing::warn!(channel_id = %ch.row.id, error = %e, "channel history not kept");
            }
        }
        self.channel_sent(&ch.row, "", "outbound").await;
    }

    /// The bot's own commands (`/start`, `/help`, `/reset`, `/cancel`, a
    /// `@bot` suffix allowed): their reply, or `None` for a message for the
    /// agent.
    async fn local_command(&self, ch: &OpenChannel, msg: &Inbound) -> Option<String> {
        let word = msg.text.split_whitespace().next()?;
        let command = word.strip_prefix('/')?.split('@').next()?;
        let name = self
            .workspace_row(ch.row.workspace_id)
            .await
            .map(|w| w.name)
            .unwrap_or_default();
        Some(match command {
            "start" => format!(
                "Connected to {name}. This chat's id is {}. Write a message and the agent answers.",
                msg.chat_id
            ),
            "help" => "Write a message and the agent answers.\n/reset forgets this chat's history\n/cancel stops waiting\n/help shows this".into(),
            "reset" => {
                let _ = self.store.channel_history_clear(ch.row.id, &msg.chat_id).await;
                "History cleared: the agent starts afresh in this chat.".into()
            }
            "cancel" => "Cancelled.".into(),
            _ => return None,
        })
    }

    /// The bot was added to or removed from a chat.
    pub(crate) async fn channel_membership(&self, ch: &OpenChannel, m: Membership) {
        let Some(adapter) = adapter(&ch.row.channel_type) else {
            return;
        };
        match m {
            Membership::Added { chat_id, title } => {
                let hello = format!(
                    "Hello {title}! This chat's id is {chat_id}: add it to the channel's chat_id to talk to the agent here."
                );
                if let Err(e) = adapter.send(self, &ch.config, &chat_id, &hello).await {
                    tracing::warn!(channel_id = %ch.row.id, error = %e, "greeting not sent");
                }
            }
            Membership::Removed { chat_id } => {
                // Only the removed chat stops; a channel with other chats
                // goes on (the reference tried to disable the whole
                // channel, with a query that always failed).
                tracing::info!(channel_id = %ch.row.id, chat_id, "the bot was removed from a chat");
                let _ = self.store.channel_history_clear(ch.row.id, &chat_id).await;
            }
        }
    }

    /// Chat history past its time (with each `channels` activation).
    pub(crate) async fn purge_channel_history(&self) {
        if let Err(e) = self
            .store
            .channel_history_purge_before(self.now() - HISTORY_TTL)
            .await
        {
            tracing::warn!(error = %e, "channel history purge failed");
        }
    }
}

/// The text of an agent's answer: the result's own parts, else its
/// artifacts' parts.
pub fn reply_text(v: &Value) -> Option<String> {
    let r = &v["result"];
    let texts = |parts: &Value| -> Vec<String> {
        parts
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["text"].as_str().map(str::to_owned))
            .collect()
    };
    let own = texts(&r["parts"]);
    if !own.is_empty() {
        return Some(own.join("\n"));
    }
    let from_artifacts: Vec<String> = r["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| texts(&a["parts"]))
        .collect();
    if !from_artifacts.is_empty() {
        return Some(from_artifacts.join("\n"));
    }
    let status = texts(&r["status"]["message"]["parts"]);
    (!status.is_empty()).then(|| status.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_is_the_messages_text_else_the_artifacts() {
        let message =
            json!({"result": {"kind": "message", "parts": [{"kind": "text", "text": "hi"}]}});
        assert_eq!(reply_text(&message).as_deref(), Some("hi"));
        let task = json!({"result": {"kind": "task", "artifacts": [{"parts": [{"kind": "text", "text": "done"}]}]}});
        assert_eq!(reply_text(&task).as_deref(), Some("done"));
        let asks = json!({"result": {"kind": "task", "status": {"state": "input-required",
            "message": {"parts": [{"kind": "text", "text": "which?"}]}}}});
        assert_eq!(reply_text(&asks).as_deref(), Some("which?"));
        assert_eq!(reply_text(&json!({"error": {"code": -1}})), None);
    }
}
