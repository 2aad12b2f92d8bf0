//! The wire side of the proxy: which methods stream, JSON-RPC envelope
//! normalisation, the A2A headers passed through, and how bodies are put
//! into activity rows.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::json_check::is_storable_json;
use super::{A2A_HEADERS, A2aError, MAX_LOGGED_BODY};

/// JSON-RPC methods answered with a server-sent event stream.
pub fn is_streaming_method(method: &str) -> bool {
    matches!(
        method,
        "message/stream" | "tasks/resubscribe" | "SendStreamingMessage" | "SubscribeToTask"
    )
}

/// The request after normalisation.
pub(super) struct Normalised {
    pub(super) bytes: Bytes,
    pub(super) method: String,
}

/// Parse and, where needed, repair the JSON-RPC envelope: a body without
/// `jsonrpc` is rebuilt as `{jsonrpc, id, method, params}`; a
/// `params.message` without `messageId` gets one. Anything else (unknown
/// methods, ids, metadata) is forwarded byte for byte.
pub(super) fn normalise(body: &Bytes) -> Result<Normalised, A2aError> {
    if let Some(method) = complete_envelope(body) {
        return Ok(Normalised {
            bytes: body.clone(),
            method,
        });
    }
    let parsed: Value =
        serde_json::from_slice(body).map_err(|_| A2aError::BadRequest("invalid JSON".into()))?;
    let Value::Object(mut obj) = parsed else {
        return Err(A2aError::BadRequest("invalid JSON".into()));
    };
    let mut changed = false;
    if !obj.contains_key("jsonrpc") {
        let mut rebuilt = Map::new();
        rebuilt.insert("jsonrpc".into(), json!("2.0"));
        rebuilt.insert("id".into(), json!(Uuid::new_v4().to_string()));
        rebuilt.insert("method".into(), obj.remove("method").unwrap_or(Value::Null));
        rebuilt.insert("params".into(), obj.remove("params").unwrap_or(Value::Null));
        obj = rebuilt;
        changed = true;
    }
    if let Some(Value::Object(message)) = obj
        .get_mut("params")
        .and_then(|p| p.as_object_mut())
        .and_then(|p| p.get_mut("message"))
        && !message.contains_key("messageId")
    {
        message.insert("messageId".into(), json!(Uuid::new_v4().to_string()));
        changed = true;
    }
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let json = Value::Object(obj);
    let bytes = if changed {
        Bytes::from(serde_json::to_vec(&json).map_err(|e| A2aError::Internal(e.to_string()))?)
    } else {
        body.clone()
    };
    Ok(Normalised { bytes, method })
}

/// The fast path of [`normalise`]: the method of a body that needs no
/// repair (an object with `jsonrpc`, and a `messageId` in any
/// `params.message` object), read without building a JSON tree. `None`
/// means "take the slow path", which also reports what is wrong.
fn complete_envelope(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(default, deserialize_with = "present")]
        jsonrpc: bool,
        #[serde(default, borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
        #[serde(default)]
        params: Option<Params>,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(default)]
        message: Option<Message>,
    }
    #[derive(serde::Deserialize)]
    struct Message {
        #[serde(rename = "messageId", default, deserialize_with = "present")]
        message_id: bool,
    }
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| true)
    }
    use serde::Deserialize;

    // A derived struct would also accept a JSON array; only objects count.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let e: Envelope = serde_json::from_slice(body).ok()?;
    let message_ok = match e.params {
        Some(Params {
            message: Some(Message { message_id }),
        }) => message_id,
        _ => true,
    };
    (e.jsonrpc && message_ok).then(|| e.method.unwrap_or_default().into_owned())
}

/// A body for an activity row, as JSON text: the body itself when it is
/// small JSON its readers can parse back (see `json_check`), a JSON string
/// when it is not, a marker when it is too large.
pub(super) fn loggable(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    if bytes.len() > MAX_LOGGED_BODY {
        return Some(crate::app::activity::fields::body_marker(bytes.len()));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if is_storable_json(text) => Some(text.to_string()),
        _ => Some(Value::String(String::from_utf8_lossy(bytes).into_owned()).to_string()),
    }
}

/// The `A2A-Version` / `A2A-Extensions` headers of a request or an answer
/// (hyper and axum share the `http` types).
pub fn a2a_headers_of(h: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    A2A_HEADERS
        .iter()
        .filter_map(|name| h.get(name).map(|v| (name.clone(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_envelope_is_forwarded_byte_for_byte() {
        let body = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":7,"method":"x/unknown","params":{"message":{"messageId":"m","parts":[]}},"extra":1}"#,
        );
        let n = normalise(&body).unwrap();
        assert_eq!(n.bytes, body, "untouched bytes, unknown keys kept");
        assert_eq!(n.method, "x/unknown");
    }

    #[test]
    fn a_bare_body_is_wrapped_and_gets_a_message_id() {
        let body = Bytes::from_static(
            br#"{"method":"message/send","params":{"message":{"role":"user","parts":[]}},"dropped":true}"#,
        );
        let n = normalise(&body).unwrap();
        let v: Value = serde_json::from_slice(&n.bytes).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert!(v["id"].as_str().unwrap().parse::<Uuid>().is_ok());
        assert!(v.get("dropped").is_none());
        assert!(v["params"]["message"]["messageId"].is_string());
    }

    #[test]
    fn the_fast_path_agrees_with_the_tree() {
        // (body, repaired?) — every body is checked against the slow path.
        let cases: [(&str, bool); 11] = [
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"messageId":"m"}}}"#,
                false,
            ),
            (r#" {"jsonrpc":null,"method":"m"}"#, false),
            (
                r#"{"jsonrpc":"2.0","method":"tasks/get","params":{"id":"t"}}"#,
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"m","params":{"message":null}}"#,
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"m","params":{"message":"text"}}"#,
                false,
            ),
            (r#"{"jsonrpc":"2.0","method":"m","params":[1]}"#, false),
            (r#"{"jsonrpc":"2.0","method":7}"#, false),
            (r#"{"jsonrpc":"2.0","method":"a","method":"b"}"#, false),
            (
                r#"{"jsonrpc":"2.0","method":"m","params":{"message":{"parts":[]}}}"#,
                true,
            ),
            (r#"{"method":"m"}"#, true),
            (r#"{"jsonrpc":"2.0","method":"m\u00e9"}"#, false),
        ];
        for (body, repaired) in cases {
            let bytes = Bytes::copy_from_slice(body.as_bytes());
            let n = normalise(&bytes).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(n.bytes != bytes, repaired, "{body}");
            let v: Value = serde_json::from_str(body).unwrap();
            let method = v["method"].as_str().unwrap_or_default();
            // Duplicate keys: the tree keeps the last one, as JSON parsers do.
            assert_eq!(n.method, method, "{body}");
        }
        assert_eq!(
            complete_envelope(br#"{"jsonrpc":"2.0","method":"message/send","params":{"message":{"messageId":"m"}}}"#),
            Some("message/send".into()),
            "the common call takes the fast path"
        );
        assert_eq!(complete_envelope(br#"["jsonrpc","2.0"]"#), None);
        assert_eq!(complete_envelope(br#"{"jsonrpc":"2.0"} trailing"#), None);
    }

    #[test]
    fn non_objects_are_invalid_json() {
        for body in [&b"[1,2]"[..], b"\"s\"", b"{", b""] {
            assert_eq!(
                normalise(&Bytes::copy_from_slice(body)).err(),
                Some(A2aError::BadRequest("invalid JSON".into()))
            );
        }
    }

    #[test]
    fn streaming_methods_of_both_protocol_versions() {
        for m in [
            "message/stream",
            "tasks/resubscribe",
            "SendStreamingMessage",
            "SubscribeToTask",
        ] {
            assert!(is_streaming_method(m));
        }
        assert!(!is_streaming_method("message/send"));
    }
}
