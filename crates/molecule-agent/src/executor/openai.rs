//! The `openai` executor: one chat-completions call per message to any
//! OpenAI-compatible endpoint (`POST {base}/chat/completions`), the reply
//! being the first choice's message content.
//!
//! The model sees the optional system prompt, the conversation before the
//! message (earlier turns of the task and earlier tasks of its context, as
//! `user` and `assistant` messages) and the message. With `ask_tool` the
//! model is offered one tool, `ask_user(question)`: calling it asks the
//! caller that question (the task goes `input-required`, and the answer
//! continues the conversation). No other tools, no token streaming from the
//! model.

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{ExecError, Prompt, Reply, emit, truncate};
use crate::AgentError;
use crate::config::OpenAiConfig;

/// Characters of an error body put in a failed task's message.
const ERROR_CHARS: usize = 500;
/// The one tool the model may be offered.
const ASK_TOOL: &str = "ask_user";

#[derive(Debug)]
pub struct OpenAiExecutor {
    config: OpenAiConfig,
    endpoint: String,
    http: reqwest::Client,
}

impl OpenAiExecutor {
    pub fn new(config: OpenAiConfig) -> Result<OpenAiExecutor, AgentError> {
        let base = config.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(AgentError::Config(format!(
                "OPENAI_BASE_URL must be an http(s) URL, got {base:?}"
            )));
        }
        if base.starts_with("https://") && !cfg!(feature = "tls") {
            return Err(AgentError::Config(
                "OPENAI_BASE_URL is https but this build has no TLS (build with --features tls)"
                    .into(),
            ));
        }
        let http = crate::outbound::http_client_builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| AgentError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(OpenAiExecutor {
            endpoint: format!("{base}/chat/completions"),
            config,
            http,
        })
    }

    pub async fn run(
        &self,
        prompt: Prompt<'_>,
        chunks: &mpsc::Sender<String>,
    ) -> Result<Reply, ExecError> {
        let mut messages = Vec::new();
        if let Some(system) = &self.config.system_prompt {
            messages.push(json!({ "role": "system", "content": system }));
        }
        for (role, text) in prompt.history {
            let role = if role == "agent" { "assistant" } else { "user" };
            messages.push(json!({ "role": role, "content": text }));
        }
        messages.push(json!({ "role": "user", "content": prompt.input }));
        let mut body = json!({ "model": self.config.model, "messages": messages });
        if self.config.ask_tool {
            body["tools"] = json!([{
                "type": "function",
                "function": {
                    "name": ASK_TOOL,
                    "description": "Ask the user a question when you need their answer to go on. \
                        Their reply comes back as the next user message.",
                    "parameters": {
                        "type": "object",
                        "properties": { "question": { "type": "string" } },
                        "required": ["question"]
                    }
                }
            }]);
        }

        let mut request = self.http.post(&self.endpoint).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ExecError(format!("model request failed: {}", error_chain(&e))))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ExecError(format!("reading the model's answer: {}", error_chain(&e))))?;
        let value: Option<Value> = serde_json::from_str(&text).ok();
        if !status.is_success() {
            let detail = value
                .as_ref()
                .and_then(|v| v.pointer("/error/message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| truncate(&text, ERROR_CHARS));
            return Err(ExecError(format!(
                "model answered HTTP {}: {detail}",
                status.as_u16()
            )));
        }
        if let Some(question) = value.as_ref().and_then(asked_question) {
            return Ok(Reply::Ask(question));
        }
        let content = value
            .as_ref()
            .and_then(|v| v.pointer("/choices/0/message/content"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ExecError(format!(
                    "model answer has no choices[0].message.content: {}",
                    truncate(&text, ERROR_CHARS)
                ))
            })?;
        emit(chunks, content.to_owned()).await;
        Ok(Reply::Done)
    }
}

/// The question of an `ask_user` tool call in the first choice, if the
/// model made one (its `arguments` are a JSON string).
fn asked_question(answer: &Value) -> Option<String> {
    let calls = answer
        .pointer("/choices/0/message/tool_calls")?
        .as_array()?;
    calls.iter().find_map(|call| {
        let function = call.get("function")?;
        if function.get("name")?.as_str()? != ASK_TOOL {
            return None;
        }
        let arguments: Value = serde_json::from_str(function.get("arguments")?.as_str()?).ok()?;
        Some(arguments.get("question")?.as_str()?.trim().to_owned())
    })
}

/// An error and its sources on one line (reqwest's top-level text alone
/// rarely says what went wrong).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::{Executor, run_prompt, run_to_string};
    use super::*;
    use axum::Json;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

    /// A fake chat-completions server: records each call's Authorization
    /// header and body, answers with `status` and `answer`.
    async fn fake_model(status: StatusCode, answer: Value) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let recorder = Arc::clone(&seen);
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            post(move |headers: HeaderMap, Json(body): Json<Value>| {
                let recorder = Arc::clone(&recorder);
                let answer = answer.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    recorder
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((auth, body));
                    (status, Json(answer))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/v1/"), seen)
    }

    fn executor(base_url: String, api_key: Option<&str>, system: Option<&str>) -> Executor {
        let config = OpenAiConfig {
            base_url,
            api_key: api_key.map(str::to_owned),
            model: "test-model".into(),
            system_prompt: system.map(str::to_owned),
            timeout: Duration::from_secs(10),
            ask_tool: false,
        };
        Executor::OpenAi(OpenAiExecutor::new(config).expect("valid config"))
    }

    #[tokio::test]
    async fn posts_a_chat_completion_and_replies_with_the_content() {
        let answer = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}}]});
        let (base, seen) = fake_model(StatusCode::OK, answer).await;
        let executor = executor(base, Some("sk-test"), Some("Be brief."));
        let (result, chunks) = run_to_string(&executor, "Capital of France?").await;
        assert_eq!(result, Ok(Reply::Done));
        assert_eq!(chunks.concat(), "Paris.");

        let calls = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(calls.len(), 1);
        let (auth, body) = &calls[0];
        assert_eq!(auth.as_deref(), Some("Bearer sk-test"));
        assert_eq!(body["model"], "test-model");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"}
            ])
        );
    }

    #[tokio::test]
    async fn no_key_sends_no_authorization() {
        let answer = json!({"choices": [{"message": {"content": "ok"}}]});
        let (base, seen) = fake_model(StatusCode::OK, answer).await;
        let (result, _) = run_to_string(&executor(base, None, None), "hi").await;
        assert_eq!(result, Ok(Reply::Done));
        let calls = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(calls[0].0, None);
        assert_eq!(
            calls[0].1["messages"],
            json!([{"role": "user", "content": "hi"}])
        );
    }

    #[tokio::test]
    async fn the_conversation_before_the_message_is_sent_as_chat_turns() {
        let answer = json!({"choices": [{"message": {"content": "hi Bob"}}]});
        let (base, seen) = fake_model(StatusCode::OK, answer).await;
        let history = [
            ("user".to_owned(), "hello".to_owned()),
            ("agent".to_owned(), "your name?".to_owned()),
        ];
        let prompt = Prompt {
            input: "Bob",
            history: &history,
            task_id: "t",
            context_id: "c",
        };
        let (result, chunks) = run_prompt(&executor(base, None, Some("be brief")), prompt).await;
        assert_eq!(result, Ok(Reply::Done));
        assert_eq!(chunks.concat(), "hi Bob");
        let calls = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(
            calls[0].1["messages"],
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "your name?"},
                {"role": "user", "content": "Bob"}
            ])
        );
    }

    #[tokio::test]
    async fn with_the_ask_tool_a_tool_call_asks_the_caller() {
        let answer = json!({"choices": [{"message": {"content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "ask_user", "arguments": "{\"question\": \"Which city?\"}"}
        }]}, "finish_reason": "tool_calls"}]});
        let (base, seen) = fake_model(StatusCode::OK, answer).await;
        let Executor::OpenAi(mut inner) = executor(base, None, None) else {
            unreachable!()
        };
        inner.config.ask_tool = true;
        let (result, chunks) = run_to_string(&Executor::OpenAi(inner), "weather?").await;
        assert_eq!(result, Ok(Reply::Ask("Which city?".into())));
        assert!(chunks.is_empty());
        let calls = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(calls[0].1["tools"][0]["function"]["name"], "ask_user");
    }

    #[tokio::test]
    async fn without_the_ask_tool_no_tools_are_offered() {
        let answer = json!({"choices": [{"message": {"content": "ok"}}]});
        let (base, seen) = fake_model(StatusCode::OK, answer).await;
        let (result, _) = run_to_string(&executor(base, None, None), "hi").await;
        assert_eq!(result, Ok(Reply::Done));
        let calls = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert!(calls[0].1.get("tools").is_none());
    }

    #[tokio::test]
    async fn errors_fail_the_task_with_the_model_error_text() {
        let cases = [
            (
                StatusCode::UNAUTHORIZED,
                json!({"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}),
                "model answered HTTP 401: Incorrect API key",
            ),
            (
                StatusCode::OK,
                json!({"choices": []}),
                "model answer has no choices[0].message.content",
            ),
        ];
        for (status, answer, want) in cases {
            let (base, _) = fake_model(status, answer).await;
            let (result, chunks) = run_to_string(&executor(base, None, None), "hi").await;
            let error = result.expect_err("fails").0;
            assert!(error.starts_with(want), "{error}");
            assert!(chunks.is_empty());
        }
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_fails_the_task() {
        // Bind then drop: nothing listens on this port any more.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        drop(listener);
        let (result, _) =
            run_to_string(&executor(format!("http://{addr}"), None, None), "hi").await;
        let error = result.expect_err("refused").0;
        assert!(error.starts_with("model request failed"), "{error}");
    }

    #[test]
    fn base_urls_are_checked_at_start() {
        let config = |base: &str| OpenAiConfig {
            base_url: base.into(),
            api_key: None,
            model: "m".into(),
            system_prompt: None,
            timeout: Duration::from_secs(1),
            ask_tool: false,
        };
        assert!(OpenAiExecutor::new(config("ftp://x")).is_err());
        assert!(OpenAiExecutor::new(config("http://x/v1/")).is_ok());
        assert_eq!(
            OpenAiExecutor::new(config("https://x/v1")).is_ok(),
            cfg!(feature = "tls")
        );
    }
}
