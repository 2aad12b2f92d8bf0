//! The unary JSON-RPC methods, the card and health routes, and malformed
//! requests, against an in-process agent.

use std::time::Duration;

use molecule_agent::config::{CommandConfig, ExecutorConfig};
use molecule_client::Method;
use serde_json::{Value, json};

use crate::support::{call, client, echo, message, reply_text, rpc, start};

#[tokio::test]
async fn card_routes_and_health() {
    let agent = start(echo(0), None).await;
    let client = client(&agent);
    for path in ["/.well-known/agent-card.json", "/.well-known/agent.json"] {
        let response = client.request(Method::GET, path, None).await.expect("card");
        assert_eq!(response.status, 200, "{path}");
        let card = response.json().expect("JSON card");
        assert_eq!(card["name"], "molecule-agent", "{path}");
        assert!(card["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(card["url"], agent.url());
        assert_eq!(
            agent.url(),
            format!("http://localhost:{}", agent.local_addr().port()),
            "default URL is http://$HOSTNAME:<bound port>"
        );
        assert_eq!(card["protocolVersion"], "0.3.0");
        assert_eq!(card["capabilities"]["streaming"], true);
        assert!(card["version"].as_str().is_some_and(|v| !v.is_empty()));
        assert_eq!(card["defaultInputModes"], json!(["text/plain"]));
        assert_eq!(card["defaultOutputModes"], json!(["text/plain"]));
        assert_eq!(card["skills"][0]["id"], "echo");
        assert!(card["skills"][0]["tags"].is_array());
        assert_eq!(&card, agent.card());
    }
    let health = client
        .request(Method::GET, "/health", None)
        .await
        .expect("health");
    assert_eq!(health.status, 200);
    agent.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn message_send_completes_and_tasks_get_finds_the_task() {
    let agent = start(echo(0), None).await;
    for id in [json!("string-id"), json!(42)] {
        let response = rpc(&agent, id.clone(), "message/send", message("hello world")).await;
        assert_eq!(response["jsonrpc"], "2.0");
        assert_eq!(response["id"], id, "the id is echoed back");
        let task = &response["result"];
        assert_eq!(task["kind"], "task");
        assert_eq!(task["status"]["state"], "completed");
        assert_eq!(task["artifacts"][0]["parts"][0]["kind"], "text");
        assert_eq!(reply_text(task), "echo: hello world");
    }

    // The caller's context id is kept; history holds the request and reply.
    let mut params = message("with context");
    params["message"]["contextId"] = json!("ctx-7");
    params["message"]["metadata"] = json!({"source": "cron"});
    let task = call(&agent, "message/send", params.clone()).await;
    assert_eq!(task["contextId"], "ctx-7");
    let history = task["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["role"], "user");
    assert_eq!(history[0]["messageId"], params["message"]["messageId"]);
    assert_eq!(history[0]["metadata"]["source"], "cron");
    assert_eq!(history[1]["role"], "agent");
    assert_eq!(history[1]["parts"][0]["text"], "echo: with context");

    let id = task["id"].clone();
    let fetched = call(&agent, "tasks/get", json!({"id": id})).await;
    assert_eq!(fetched["id"], id);
    assert_eq!(fetched["status"]["state"], "completed");
    assert_eq!(reply_text(&fetched), "echo: with context");
    let trimmed = call(&agent, "tasks/get", json!({"id": id, "historyLength": 1})).await;
    assert_eq!(trimmed["history"].as_array().map(Vec::len), Some(1));
    assert_eq!(trimmed["history"][0]["role"], "agent");

    // Platform message variants: delegation's `type`, GitHub's bare text
    // (their `messageId` is filled in by the platform's proxy).
    for parts in [
        json!([{"type": "text", "text": "delegated"}]),
        json!([{"text": "delegated"}]),
    ] {
        let task = call(
            &agent,
            "message/send",
            json!({"message": {"role": "user", "messageId": "p-1", "parts": parts}}),
        )
        .await;
        assert_eq!(reply_text(&task), "echo: delegated");
    }
    agent.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn tasks_cancel_stops_a_running_task() {
    let agent = start(echo(200), None).await;
    let mut params = message("a b c d e f");
    params["configuration"] = json!({"blocking": false});
    let task = call(&agent, "message/send", params).await;
    assert_eq!(
        task["status"]["state"], "working",
        "blocking:false answers at once"
    );
    let id = task["id"].clone();

    let canceled = call(&agent, "tasks/cancel", json!({"id": id})).await;
    assert_eq!(canceled["status"]["state"], "canceled");
    // Long enough for the remaining words had the executor kept going.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fetched = call(&agent, "tasks/get", json!({"id": id})).await;
    assert_eq!(fetched["status"]["state"], "canceled", "a cancel is final");
    let again = rpc(&agent, json!(1), "tasks/cancel", json!({"id": id})).await;
    assert_eq!(again["error"]["code"], -32002);
    agent.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn task_errors_use_the_a2a_codes() {
    let agent = start(echo(0), None).await;
    let done = call(&agent, "message/send", message("x")).await;
    let cases = [
        ("tasks/get", json!({"id": "no-such-task"}), -32001),
        ("tasks/cancel", json!({"id": "no-such-task"}), -32001),
        ("tasks/cancel", json!({"id": done["id"]}), -32002),
        ("tasks/get", json!({}), -32602),
        ("message/send", json!({}), -32602),
        (
            "message/send",
            json!({"message": {"role": "user", "parts": []}}),
            -32602,
        ),
        (
            "message/send",
            json!({"message": {"role": "user", "parts": [{"kind": "text", "text": "no id"}]}}),
            -32602,
        ),
        (
            "message/send",
            json!({"message": {"messageId": "m", "parts": [{"kind": "text", "text": "no role"}]}}),
            -32602,
        ),
        (
            "message/send",
            json!({"message": {"role": "user", "messageId": "m", "taskId": "no-such-task",
                "parts": [{"kind": "text", "text": "x"}]}}),
            -32001,
        ),
        ("tasks/pushNotificationConfig/set", json!({}), -32003),
        ("agent/getAuthenticatedExtendedCard", json!({}), -32007),
        ("no/such/method", json!({}), -32601),
        ("SendMessage", json!({}), -32601),
    ];
    for (method, params, code) in cases {
        let response = rpc(&agent, json!("e"), method, params.clone()).await;
        assert_eq!(
            response["error"]["code"], code,
            "{method} {params}: {response}"
        );
        assert_eq!(response["id"], "e");
        assert!(
            response["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(response.get("result").is_none());
    }
    agent.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn malformed_requests_get_jsonrpc_errors() {
    let agent = start(echo(0), None).await;
    let client = client(&agent);
    let cases: [(&[u8], i64, Value); 6] = [
        (b"{not json", -32700, Value::Null),
        (b"", -32700, Value::Null),
        (b"[]", -32600, Value::Null),
        (br#"{"jsonrpc":"2.0","id":3}"#, -32600, json!(3)),
        (
            br#"{"jsonrpc":"1.0","id":"v","method":"message/send"}"#,
            -32600,
            json!("v"),
        ),
        (
            br#"{"jsonrpc":"2.0","id":[1],"method":"tasks/get"}"#,
            -32600,
            Value::Null,
        ),
    ];
    for (body, code, id) in cases {
        let response = client
            .raw(Method::POST, "/")
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("agent answers");
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(body));
        let envelope = response.json().expect("JSON");
        assert_eq!(
            envelope["error"]["code"],
            code,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(envelope["id"], id);
    }
    agent.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_failing_command_fails_the_task_with_its_stderr() {
    let executor = ExecutorConfig::Command(CommandConfig {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            "cat >/dev/null; echo 'no luck' >&2; exit 4".into(),
        ],
        timeout: Duration::from_secs(30),
    });
    let agent = start(executor, None).await;
    let task = call(&agent, "message/send", message("try")).await;
    assert_eq!(task["status"]["state"], "failed");
    let error = task["status"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("no luck") && error.contains("exit status: 4"),
        "{error}"
    );
    agent.shutdown().await.expect("clean shutdown");
}
