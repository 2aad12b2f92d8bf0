//! The client's one error type. It keeps the platform's answer intact (status,
//! body and the `{"error"}` text) so tests can assert on refusals; it does not
//! interpret them.

use serde_json::Value;

/// Everything a call through [`crate::Client`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The platform answered with a non-success status.
    #[error("HTTP {status}: {message}")]
    Http {
        status: u16,
        /// The body as JSON, or as a JSON string when it was not JSON
        /// (`Value::Null` when empty).
        body: Value,
        /// The `error` field of a JSON body, else the body text.
        message: String,
    },
    /// The request never got an answer (connection refused, reset, timeout).
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
    /// The answer arrived but was not the expected shape.
    #[error("cannot decode {context}: {source}")]
    Decode {
        /// What was being decoded: the request line or "WebSocket frame",
        /// plus the start of the offending body.
        context: String,
        #[source]
        source: serde_json::Error,
    },
    /// The WebSocket handshake or stream failed.
    #[error("WebSocket error: {0}")]
    WebSocket(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    /// The request could not be built: a malformed base URL or header.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// The HTTP status of an [`ClientError::Http`] answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The body of an [`ClientError::Http`] answer, e.g. the `children` of a
    /// 409 on delete.
    pub fn body(&self) -> Option<&Value> {
        match self {
            ClientError::Http { body, .. } => Some(body),
            _ => None,
        }
    }

    /// Builds the error for a non-success answer from its raw body.
    pub fn from_http(status: u16, body: &[u8]) -> Self {
        let body = parse_body(body);
        let message = match &body {
            Value::Object(map) => match map.get("error") {
                Some(Value::String(text)) => text.clone(),
                _ => body.to_string(),
            },
            Value::String(text) => text.trim().to_owned(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        ClientError::Http {
            status,
            body,
            message,
        }
    }

    pub(crate) fn decode(
        context: impl Into<String>,
        body: &[u8],
        source: serde_json::Error,
    ) -> Self {
        let snippet: String = String::from_utf8_lossy(body).chars().take(200).collect();
        ClientError::Decode {
            context: format!("{} (body: {snippet:?})", context.into()),
            source,
        }
    }
}

/// A body as JSON when it is JSON, as a JSON string when it is text, and
/// `Null` when it is empty.
pub(crate) fn parse_body(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn http_errors_keep_body_and_error_text() {
        let cases: [(&[u8], Value, &str); 5] = [
            (
                br#"{"error":"workspace not found"}"#,
                json!({"error": "workspace not found"}),
                "workspace not found",
            ),
            (
                br#"{"status":"confirmation_required","children_count":1}"#,
                json!({"status": "confirmation_required", "children_count": 1}),
                r#"{"children_count":1,"status":"confirmation_required"}"#,
            ),
            (
                b"404 page not found\n",
                json!("404 page not found\n"),
                "404 page not found",
            ),
            (b"", Value::Null, ""),
            (br#"{"error":42}"#, json!({"error": 42}), r#"{"error":42}"#),
        ];
        for (raw, want_body, want_message) in cases {
            let err = ClientError::from_http(409, raw);
            assert_eq!(err.status(), Some(409));
            assert_eq!(err.body(), Some(&want_body));
            match err {
                ClientError::Http { message, .. } => assert_eq!(message, want_message),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn display_shows_status_and_message() {
        let err = ClientError::from_http(401, br#"{"error":"missing workspace auth token"}"#);
        assert_eq!(err.to_string(), "HTTP 401: missing workspace auth token");
    }

    #[test]
    fn decode_errors_name_the_request_and_have_no_status() {
        let source = serde_json::from_slice::<Value>(b"{").unwrap_err();
        let err = ClientError::decode("GET /health", b"{", source);
        assert_eq!(err.status(), None);
        assert!(
            err.to_string()
                .starts_with("cannot decode GET /health (body: \"{\")"),
            "{err}"
        );
    }
}
