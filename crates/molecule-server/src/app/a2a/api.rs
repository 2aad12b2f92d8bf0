//! JSON calls to the chat platforms' HTTP APIs (the Telegram Bot API, the
//! Slack Web API) through the platform's outbound HTTP client. Their base
//! URLs are the operator's configuration (`TELEGRAM_API_URL`,
//! `SLACK_API_URL`), dialled as configured like the trace API. A URL may
//! carry a bot token (Telegram puts it in the path): errors name the API
//! method, never the URL.

use axum::http::{HeaderValue, header};
use bytes::Bytes;
use serde_json::Value;
use std::time::Duration;

use super::upstream;
use super::{App, Endpoint, UrlOrigin};

/// An API's answer: its status and JSON body (`Null` when not JSON).
#[derive(Debug)]
pub struct ApiAnswer {
    pub status: u16,
    pub json: Value,
    /// `Retry-After` in seconds, when the API sent one.
    pub retry_after: Option<u64>,
}

impl App {
    /// `POST url` with `body` as JSON (or `GET` without one), an optional
    /// bearer, within `timeout`. `Err` is a transport failure, described
    /// without the URL.
    pub async fn json_api(
        &self,
        url: &str,
        method_name: &str,
        body: Option<&Value>,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<ApiAnswer, String> {
        let endpoint = Endpoint::parse(url, UrlOrigin::Provisioned)
            .ok_or_else(|| format!("{method_name}: the API URL is not http(s)"))?;
        let mut req = match body {
            Some(b) => upstream::post(&endpoint, Bytes::from(b.to_string()), None, &[]),
            None => upstream::get(&endpoint, &endpoint.path.to_string())
                .ok_or_else(|| format!("{method_name}: bad API path"))?,
        };
        if let Some(token) = bearer {
            let v = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| format!("{method_name}: the token is not a valid header value"))?;
            req.headers_mut().insert(header::AUTHORIZATION, v);
        }
        let deadline = Some(tokio::time::Instant::now() + timeout);
        let answer = self
            .a2a_http
            .whole(&endpoint, req, deadline)
            .await
            .map_err(|e| format!("{method_name}: {e}"))?;
        let retry_after = answer
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = answer
            .body
            .map_err(|e| format!("{method_name}: reading the answer: {}", e.detail()))?;
        Ok(ApiAnswer {
            status: answer.status.as_u16(),
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
            retry_after,
        })
    }
}
