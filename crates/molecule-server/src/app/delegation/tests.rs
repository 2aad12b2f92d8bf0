//! Unit tests of `delegation/`: reply text, completion rule, previews.
use super::*;
use crate::app::a2a::A2aReply;
use bytes::Bytes;

#[test]
fn reply_text_reads_messages_artifacts_and_tasks() {
    let msg = br#"{"result":{"kind":"message","parts":[{"kind":"data","data":{}},{"kind":"text","text":"hi"}]}}"#;
    assert_eq!(reply_text(msg), "hi");
    let art = br#"{"result":{"kind":"task","artifacts":[{"parts":[{"kind":"text","text":"from artifact"}]}]}}"#;
    assert_eq!(reply_text(art), "from artifact");
    let task = br#"{"result":{"kind":"task","status":{"state":"completed","message":{"parts":[{"text":"v1 part"}]}}}}"#;
    assert_eq!(reply_text(task), "v1 part");
    assert_eq!(reply_text(b"plain"), "plain");
}

#[test]
fn only_a_clean_2xx_completes() {
    let reply = |status, body: &'static [u8]| A2aReply {
        status,
        body: Bytes::from_static(body),
        duration: Duration::ZERO,
    };
    assert_eq!(
        reply_failure(&reply(200, br#"{"result":{"parts":[]}}"#)),
        None
    );
    assert_eq!(
        reply_failure(&reply(500, b"oops")).as_deref(),
        Some("HTTP 500")
    );
    assert_eq!(
        reply_failure(&reply(
            200,
            br#"{"error":{"code":-32601,"message":"nope"}}"#
        ))
        .as_deref(),
        Some("agent error -32601: nope")
    );
    assert_eq!(
        reply_failure(&reply(200, br#"{"result":{"status":{"state":"failed"}}}"#)).as_deref(),
        Some("task failed")
    );
}

#[test]
fn previews_never_split_characters() {
    assert_eq!(preview("héllo", 2), "hé");
}
