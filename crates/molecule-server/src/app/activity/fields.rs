//! The one size rule of activity rows: every stored field has a cap, and
//! what is over it is replaced by a marker instead of being stored. A JSON
//! body (request, response) over [`MAX_BODY_BYTES`] becomes
//! `{"truncated":true,"bytes":N}`; a text field (summary, error_detail,
//! method, status, source label) over [`MAX_TEXT_BYTES`] is cut at a
//! character boundary and ends with `…[truncated, N bytes]`, N being the
//! original size. The proxy's per-call rows follow the same rule
//! ([`body_marker`] is what `loggable` writes) and the caps are checked on
//! every row that enters the queue or is inserted directly.
//!
//! It does not decide whether a body is JSON its readers can parse back:
//! that is the proxy's `json_check`.

use molecule_store::NewActivity;
use serde_json::Value;

/// Largest JSON body stored in an activity row.
pub const MAX_BODY_BYTES: usize = 256 << 10;
/// Largest text field stored in an activity row, marker included.
pub const MAX_TEXT_BYTES: usize = 4 << 10;
/// What a row costs besides its variable fields: ids, timestamps, the
/// struct itself. An estimate; it only has to keep tiny rows from being free.
const ROW_OVERHEAD: usize = 256;

/// The stored form of a body of `bytes` bytes that is over the cap.
pub fn body_marker(bytes: usize) -> String {
    format!(r#"{{"truncated":true,"bytes":{bytes}}}"#)
}

/// Cap every field of `row` (see the module doc). A body given as a
/// `Value` is serialised once here into its raw text, so its size is known
/// and the store does not serialise it again.
pub fn cap_row(row: &mut NewActivity) {
    cap_body(&mut row.request_body, &mut row.request_raw);
    cap_body(&mut row.response_body, &mut row.response_raw);
    for text in [
        &mut row.summary,
        &mut row.error_detail,
        &mut row.method,
        &mut row.source_label,
    ]
    .into_iter()
    .flatten()
    {
        cap_text(text);
    }
    cap_text(&mut row.status);
}

/// What `row` holds in memory, roughly: its variable fields plus a fixed
/// overhead. Meant for rows that went through [`cap_row`] (bodies as raw text).
pub fn row_bytes(row: &NewActivity) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    ROW_OVERHEAD
        + row.activity_type.as_str().len()
        + row.status.len()
        + opt(&row.summary)
        + opt(&row.error_detail)
        + opt(&row.method)
        + opt(&row.source_label)
        + opt(&row.idempotency_key)
        + opt(&row.request_raw)
        + opt(&row.response_raw)
}

fn cap_body(value: &mut Option<Value>, raw: &mut Option<String>) {
    if raw.is_none()
        && let Some(v) = value.take()
    {
        *raw = Some(v.to_string());
    }
    *value = None;
    if let Some(text) = raw.as_mut()
        && text.len() > MAX_BODY_BYTES
    {
        *text = body_marker(text.len());
    }
}

fn cap_text(text: &mut String) {
    cap_text_to(text, MAX_TEXT_BYTES);
}

/// Cut `text` to at most `max` bytes, marker included, the way text
/// fields are cut. For text that goes inside a body and must leave room
/// for the body's other keys.
pub fn cap_text_to(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let marker = format!("…[truncated, {} bytes]", text.len());
    let mut cut = max.saturating_sub(marker.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str(&marker);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> NewActivity {
        NewActivity::new(uuid::Uuid::nil(), molecule_types::ActivityType::AgentLog)
    }

    #[test]
    fn small_fields_are_kept_as_they_are() {
        let mut r = row();
        r.summary = Some("done".into());
        r.request_body = Some(json!({"a": 1}));
        cap_row(&mut r);
        assert_eq!(r.summary.as_deref(), Some("done"));
        assert_eq!(r.request_raw.as_deref(), Some(r#"{"a":1}"#));
        assert!(
            r.request_body.is_none(),
            "serialised once, into the raw text"
        );
    }

    #[test]
    fn large_bodies_become_the_marker() {
        let mut r = row();
        r.request_body = Some(json!("x".repeat(MAX_BODY_BYTES)));
        r.response_raw = Some(format!("\"{}\"", "y".repeat(MAX_BODY_BYTES)));
        cap_row(&mut r);
        let req: Value = serde_json::from_str(r.request_raw.as_deref().unwrap()).unwrap();
        assert_eq!(req, json!({"truncated": true, "bytes": MAX_BODY_BYTES + 2}));
        let resp: Value = serde_json::from_str(r.response_raw.as_deref().unwrap()).unwrap();
        assert_eq!(
            resp,
            json!({"truncated": true, "bytes": MAX_BODY_BYTES + 2})
        );
    }

    #[test]
    fn long_text_is_cut_on_a_character_and_marked() {
        for len in [MAX_TEXT_BYTES + 1, 3 * MAX_TEXT_BYTES] {
            let mut r = row();
            let original = "é".repeat(len / 2 + 1);
            r.summary = Some(original.clone());
            r.status = original.clone();
            cap_row(&mut r);
            for text in [r.summary.as_deref().unwrap(), r.status.as_str()] {
                assert!(text.len() <= MAX_TEXT_BYTES, "{} bytes", text.len());
                assert!(text.ends_with(&format!("…[truncated, {} bytes]", original.len())));
                assert!(text.starts_with("éé"));
            }
        }
    }

    #[test]
    fn the_size_of_a_row_counts_its_capped_fields() {
        let mut r = row();
        r.request_body = Some(json!("x".repeat(10 * MAX_BODY_BYTES)));
        r.summary = Some("s".repeat(100));
        cap_row(&mut r);
        let n = row_bytes(&r);
        assert!(n < 1024, "a capped row is small: {n}");
        assert!(n > 100);
    }
}
