//! JSON-RPC 2.0 framing: parsing a request body into `(id, method, params)`,
//! the error codes of spec/a2a.md §2.4, and building response envelopes.
//!
//! It knows no A2A method: dispatch lives in `http.rs`, semantics in
//! `runner.rs`. Batches (a JSON array) are refused as invalid requests, since
//! A2A never sends them.

use serde::Serialize;
use serde_json::{Map, Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
pub const TASK_NOT_FOUND: i64 = -32001;
pub const TASK_NOT_CANCELABLE: i64 = -32002;
pub const PUSH_NOT_SUPPORTED: i64 = -32003;
pub const UNSUPPORTED_OPERATION: i64 = -32004;
pub const EXTENDED_CARD_NOT_CONFIGURED: i64 = -32007;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, message)
    }
}

/// A well-formed request. `id` is a string, a number or null.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Value,
    pub method: String,
    pub params: Value,
}

/// Parses a request body. On failure returns the error response to send,
/// carrying the request's id when one could be read.
pub fn parse(body: &[u8]) -> Result<Request, Value> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        failure(
            &Value::Null,
            &RpcError::new(PARSE_ERROR, format!("parse error: {e}")),
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err(invalid(&Value::Null, "request must be a JSON object"));
    };
    let id = object.remove("id").unwrap_or(Value::Null);
    if !matches!(id, Value::String(_) | Value::Number(_) | Value::Null) {
        return Err(invalid(
            &Value::Null,
            "id must be a string, a number or null",
        ));
    }
    if object.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid(&id, "jsonrpc must be \"2.0\""));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => return Err(invalid(&id, "method must be a string")),
    };
    let params = object
        .remove("params")
        .unwrap_or_else(|| Value::Object(Map::new()));
    if !matches!(params, Value::Object(_) | Value::Array(_)) {
        return Err(invalid(&id, "params must be an object or an array"));
    }
    Ok(Request { id, method, params })
}

/// `{jsonrpc, id, result}`.
pub fn success(id: &Value, result: &impl Serialize) -> Value {
    match serde_json::to_value(result) {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(e) => failure(
            id,
            &RpcError::new(INTERNAL_ERROR, format!("cannot encode result: {e}")),
        ),
    }
}

/// `{jsonrpc, id, error: {code, message}}`.
pub fn failure(id: &Value, error: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

fn invalid(id: &Value, message: &str) -> Value {
    failure(id, &RpcError::new(INVALID_REQUEST, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_well_formed_requests() {
        let cases = [
            (
                r#"{"jsonrpc":"2.0","id":"a","method":"m","params":{"x":1}}"#,
                json!("a"),
                json!({"x": 1}),
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"m"}"#,
                json!(7),
                json!({}),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"m","params":[1]}"#,
                Value::Null,
                json!([1]),
            ),
        ];
        for (body, id, params) in cases {
            let request = parse(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(request.id, id);
            assert_eq!(request.method, "m");
            assert_eq!(request.params, params);
        }
    }

    #[test]
    fn parse_refuses_malformed_requests_with_the_right_code_and_id() {
        let cases = [
            ("{", PARSE_ERROR, Value::Null),
            ("", PARSE_ERROR, Value::Null),
            ("[]", INVALID_REQUEST, Value::Null),
            ("42", INVALID_REQUEST, Value::Null),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"m"}"#,
                INVALID_REQUEST,
                Value::Null,
            ),
            (r#"{"id":1,"method":"m"}"#, INVALID_REQUEST, json!(1)),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"m"}"#,
                INVALID_REQUEST,
                json!(1),
            ),
            (r#"{"jsonrpc":"2.0","id":"x"}"#, INVALID_REQUEST, json!("x")),
            (
                r#"{"jsonrpc":"2.0","id":"x","method":5}"#,
                INVALID_REQUEST,
                json!("x"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":"x","method":"m","params":"p"}"#,
                INVALID_REQUEST,
                json!("x"),
            ),
        ];
        for (body, code, id) in cases {
            let response = parse(body.as_bytes()).expect_err(body);
            assert_eq!(response["jsonrpc"], "2.0", "{body}");
            assert_eq!(response["error"]["code"], code, "{body}");
            assert_eq!(response["id"], id, "{body}");
        }
    }

    #[test]
    fn envelopes_carry_the_id() {
        assert_eq!(
            success(&json!(3), &json!({"ok": true})),
            json!({"jsonrpc": "2.0", "id": 3, "result": {"ok": true}})
        );
        assert_eq!(
            failure(&json!("i"), &RpcError::new(METHOD_NOT_FOUND, "no")),
            json!({"jsonrpc": "2.0", "id": "i", "error": {"code": -32601, "message": "no"}})
        );
    }
}
