//! The wire side of the proxy: which methods stream, JSON-RPC envelope
//! normalisation, the A2A headers passed through, and how bodies are put
//! into activity rows.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use serde_json::{Value, json};
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

/// JSON-RPC 2.0 error codes the proxy answers itself.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

fn rpc_error(id: Value, code: i64, message: impl Into<String>) -> A2aError {
    A2aError::Rpc {
        id,
        code,
        message: message.into(),
    }
}

/// Check the JSON-RPC envelope and, where the request carries a message
/// without `messageId`, fill one in (the one repair, docs/compat.md). A body
/// that is not a JSON-RPC 2.0 request is answered with the JSON-RPC error a
/// conforming server gives — -32700 for malformed JSON, -32600 for a
/// non-object, a missing or wrong `jsonrpc`, a non-string `method`, an `id`
/// that is not a string, number or null, or `params` that are not structured —
/// with the request's id when it can be read. Anything else (unknown
/// methods, ids, metadata, extensions) is forwarded byte for byte.
pub(super) fn normalise(body: &Bytes) -> Result<Normalised, A2aError> {
    if let Some(method) = complete_envelope(body) {
        return Ok(Normalised {
            bytes: body.clone(),
            method,
        });
    }
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| rpc_error(Value::Null, PARSE_ERROR, format!("parse error: {e}")))?;
    let Value::Object(mut obj) = parsed else {
        return Err(rpc_error(
            Value::Null,
            INVALID_REQUEST,
            "request must be a JSON object",
        ));
    };
    let id = match obj.get("id") {
        None => Value::Null,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => id.clone(),
        Some(_) => {
            return Err(rpc_error(
                Value::Null,
                INVALID_REQUEST,
                "id must be a string, a number or null",
            ));
        }
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(rpc_error(id, INVALID_REQUEST, "jsonrpc must be \"2.0\""));
    }
    let method = match obj.get("method") {
        Some(Value::String(method)) => method.clone(),
        _ => return Err(rpc_error(id, INVALID_REQUEST, "method must be a string")),
    };
    if !matches!(
        obj.get("params"),
        None | Some(Value::Null | Value::Object(_) | Value::Array(_))
    ) {
        return Err(rpc_error(
            id,
            INVALID_REQUEST,
            "params must be an object or an array",
        ));
    }
    let mut changed = false;
    if let Some(Value::Object(message)) = obj
        .get_mut("params")
        .and_then(|p| p.as_object_mut())
        .and_then(|p| p.get_mut("message"))
        && !message.contains_key("messageId")
    {
        message.insert("messageId".into(), json!(Uuid::new_v4().to_string()));
        changed = true;
    }
    let bytes = if changed {
        Bytes::from(
            serde_json::to_vec(&Value::Object(obj))
                .map_err(|e| A2aError::Internal(e.to_string()))?,
        )
    } else {
        body.clone()
    };
    Ok(Normalised { bytes, method })
}

/// The fast path of [`normalise`]: the method of a body that needs no
/// repair (an object with `jsonrpc: "2.0"`, a string `method`, an id of a
/// valid type, and a `messageId` in any `params.message` object), read
/// without building a JSON tree. `None` means "take the slow path", which
/// also reports what is wrong.
fn complete_envelope(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(default, borrow)]
        jsonrpc: Option<std::borrow::Cow<'a, str>>,
        #[serde(default, borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
        #[serde(default)]
        id: Option<Value>,
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
    let id_ok = matches!(e.id, None | Some(Value::String(_) | Value::Number(_)));
    let method = e.method?;
    (e.jsonrpc.as_deref() == Some("2.0") && id_ok && message_ok).then(|| method.into_owned())
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
    fn a_message_without_an_id_gets_one_and_nothing_else_changes() {
        let body = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":"k","method":"message/send","params":{"message":{"role":"user","parts":[]}},"kept":true}"#,
        );
        let n = normalise(&body).unwrap();
        let v: Value = serde_json::from_slice(&n.bytes).unwrap();
        assert_eq!(v["id"], "k", "the caller's id");
        assert_eq!(v["kept"], true);
        assert!(v["params"]["message"]["messageId"].is_string());
    }

    fn rpc_refusal(body: &str) -> (Value, i64) {
        match normalise(&Bytes::copy_from_slice(body.as_bytes())) {
            Err(A2aError::Rpc { id, code, .. }) => (id, code),
            Err(other) => panic!("{body}: {other:?}"),
            Ok(_) => panic!("{body}: accepted"),
        }
    }

    #[test]
    fn what_is_not_json_rpc_gets_a_json_rpc_error_with_the_id() {
        let cases = [
            ("{", Value::Null, PARSE_ERROR),
            ("", Value::Null, PARSE_ERROR),
            ("[1,2]", Value::Null, INVALID_REQUEST),
            ("\"s\"", Value::Null, INVALID_REQUEST),
            (
                r#"{"method":"message/send","id":9}"#,
                json!(9),
                INVALID_REQUEST,
            ),
            (
                r#"{"jsonrpc":"1.0","method":"m","id":"a"}"#,
                json!("a"),
                INVALID_REQUEST,
            ),
            (
                r#"{"jsonrpc":null,"method":"m"}"#,
                Value::Null,
                INVALID_REQUEST,
            ),
            (r#"{"jsonrpc":"2.0","id":"b"}"#, json!("b"), INVALID_REQUEST),
            (
                r#"{"jsonrpc":"2.0","id":"c","method":7}"#,
                json!("c"),
                INVALID_REQUEST,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"m"}"#,
                Value::Null,
                INVALID_REQUEST,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"m","params":"p"}"#,
                json!(1),
                INVALID_REQUEST,
            ),
        ];
        for (body, id, code) in cases {
            assert_eq!(rpc_refusal(body), (id, code), "{body}");
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_tree() {
        // (body, repaired?) — every body is checked against the slow path.
        let cases: [(&str, bool); 10] = [
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"messageId":"m"}}}"#,
                false,
            ),
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
            (r#"{"jsonrpc":"2.0","method":"m","params":null}"#, false),
            (r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#, false),
            (r#"{"jsonrpc":"2.0","method":"a","method":"b"}"#, false),
            (
                r#"{"jsonrpc":"2.0","method":"m","params":{"message":{"parts":[]}}}"#,
                true,
            ),
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
        assert_eq!(
            complete_envelope(br#"{"jsonrpc":"1.0","method":"m"}"#),
            None
        );
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
