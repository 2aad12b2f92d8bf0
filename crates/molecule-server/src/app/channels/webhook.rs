//! `POST /webhooks/:type` (api-contract §5.17): a chat platform pushes a
//! message. Telegram: the update's chat picks the channel, whose
//! `webhook_secret` must match `X-Telegram-Bot-Api-Secret-Token` (constant
//! time); a channel without a secret takes webhooks only in development
//! (the reference took forged posts for it). Slack: the request must verify
//! under an enabled channel's signing secret, within five minutes, and each
//! event id is taken once. The answer is immediate; the agent is asked in
//! a job.

use serde_json::{Value, json};

use super::{Adapter, OpenChannel, slack, telegram};
use crate::app::App;
use crate::app::auth::secrets_equal;
use crate::config::Mode;
use crate::error::{AppError, AppResult};

/// What a channel webhook came with.
pub struct ChannelDelivery<'a> {
    pub kind: &'a str,
    pub body: &'a [u8],
    pub telegram_secret: Option<&'a str>,
    pub slack_signature: Option<&'a str>,
    pub slack_timestamp: Option<&'a str>,
}

fn status(s: &str) -> Value {
    json!({ "status": s })
}

impl App {
    pub async fn channel_webhook(&self, d: ChannelDelivery<'_>) -> AppResult<Value> {
        match d.kind {
            "telegram" => self.telegram_webhook(d).await,
            "slack" => self.slack_webhook(d).await,
            _ => Err(AppError::not_found("unknown channel type")),
        }
    }

    async fn channels_of(&self, kind: &str) -> AppResult<Vec<OpenChannel>> {
        Ok(self
            .enabled_channels()
            .await?
            .into_iter()
            .filter(|c| c.row.channel_type == kind)
            .collect())
    }

    async fn telegram_webhook(&self, d: ChannelDelivery<'_>) -> AppResult<Value> {
        let update: Value = serde_json::from_slice(d.body)
            .map_err(|e| AppError::invalid(format!("parse error: {e}")))?;
        let Some(msg) = telegram::Telegram.parse_inbound(&update) else {
            return Ok(status("ignored"));
        };
        let production = self.config.mode == Mode::Production;
        for ch in self.channels_of("telegram").await? {
            if !super::adapter("telegram")
                .is_some_and(|a| a.chats(&ch.config).contains(&msg.chat_id))
            {
                continue;
            }
            let secret_ok = match ch.config["webhook_secret"]
                .as_str()
                .filter(|s| !s.is_empty())
            {
                Some(secret) => d.telegram_secret.is_some_and(|h| secrets_equal(h, secret)),
                None => !production,
            };
            if secret_ok {
                self.accept_inbound(&ch, msg);
                return Ok(status("accepted"));
            }
        }
        Ok(status("no_channel"))
    }

    async fn slack_webhook(&self, d: ChannelDelivery<'_>) -> AppResult<Value> {
        let refused = || AppError::Unauthenticated("invalid webhook signature".into());
        let (Some(signature), Some(timestamp)) = (d.slack_signature, d.slack_timestamp) else {
            return Err(refused());
        };
        let ts: i64 = timestamp.trim().parse().map_err(|_| refused())?;
        if (self.now().timestamp() - ts).abs() > slack::MAX_SKEW_SECS {
            return Err(refused());
        }
        let channels = self.channels_of("slack").await?;
        let Some(ch) = channels.into_iter().find(|c| {
            c.config["signing_secret"]
                .as_str()
                .is_some_and(|secret| slack::verify(secret, timestamp, d.body, signature))
        }) else {
            return Err(refused());
        };
        let envelope: Value = serde_json::from_slice(d.body)
            .map_err(|e| AppError::invalid(format!("parse error: {e}")))?;
        if envelope["type"] == "url_verification" {
            return Ok(json!({ "challenge": envelope["challenge"] }));
        }
        let event_id = envelope["event_id"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 200)
            .ok_or_else(|| AppError::invalid("event_id is required"))?;
        let first = self
            .store
            .webhook_delivery_record("slack", event_id, self.now())
            .await
            .map_err(AppError::internal("failed to record the delivery"))?;
        if !first {
            return Err(AppError::Conflict(format!(
                "event {event_id} was already processed"
            )));
        }
        let Some(msg) = slack::Slack.parse_inbound(&envelope) else {
            return Ok(status("ignored"));
        };
        if !super::adapter("slack").is_some_and(|a| a.chats(&ch.config).contains(&msg.chat_id)) {
            return Ok(status("no_channel"));
        }
        self.accept_inbound(&ch, msg);
        Ok(status("accepted"))
    }
}
