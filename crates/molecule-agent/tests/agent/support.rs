//! Shared test helpers: starting agents, JSON-RPC calls through
//! `molecule-client`, an SSE reader, polling with a deadline, and a fake
//! platform that records register/heartbeat calls and answers as scripted.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use molecule_agent::RunningAgent;
use molecule_agent::config::{AgentConfig, ExecutorConfig, PlatformConfig};
use molecule_client::{Client, Method};
use serde_json::{Value, json};

/// Generous: these bound waits for things that take milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(15);

pub fn echo(delay_ms: u64) -> ExecutorConfig {
    ExecutorConfig::Echo {
        delay: Duration::from_millis(delay_ms),
    }
}

/// Starts an agent on 127.0.0.1:0.
pub async fn start(executor: ExecutorConfig, platform: Option<PlatformConfig>) -> RunningAgent {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let mut config = AgentConfig::standalone(executor);
    config.platform = platform;
    molecule_agent::start(config, listener)
        .await
        .expect("agent starts")
}

/// A platform-style client of `base_url`. Installs the crypto provider
/// first: with the `tls` feature reqwest cannot build a client without one.
pub fn client_of(base_url: String) -> Client {
    molecule_agent::outbound::install_crypto_provider();
    Client::new(base_url)
}

pub fn client(agent: &RunningAgent) -> Client {
    client_of(format!("http://{}", agent.local_addr()))
}

/// A plain reqwest client (see [`client_of`] about the provider).
pub fn http() -> reqwest::Client {
    molecule_agent::outbound::install_crypto_provider();
    reqwest::Client::new()
}

/// Sends a JSON-RPC request and returns the whole response envelope.
pub async fn rpc(agent: &RunningAgent, id: Value, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let response = client(agent)
        .request(Method::POST, "/", Some(&body))
        .await
        .expect("agent answers");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json().expect("JSON answer")
}

/// The `result` of a successful call; panics with the error otherwise.
pub async fn call(agent: &RunningAgent, method: &str, params: Value) -> Value {
    let response = rpc(agent, json!("req-1"), method, params).await;
    assert!(
        response.get("error").is_none(),
        "{method} failed: {response}"
    );
    response["result"].clone()
}

/// `message/send` params with one text part.
pub fn message(text: &str) -> Value {
    json!({"message": {"role": "user", "messageId": uuid::Uuid::new_v4().to_string(),
        "parts": [{"kind": "text", "text": text}]}})
}

/// The reply text of a finished task.
pub fn reply_text(task: &Value) -> &str {
    task["artifacts"][0]["parts"][0]["text"]
        .as_str()
        .unwrap_or("<no reply>")
}

/// Polls `condition` every 20 ms until it holds or [`DEADLINE`] passes.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh empty directory, removed with everything in it on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("molecule-agent-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> PathBuf {
        self.0.clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads `data:` events off an SSE response.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> SseReader {
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next event's data as JSON; `None` when the stream ends.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = frame
                    .lines()
                    .filter_map(|line| line.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(serde_json::from_str(&data.join("\n")).expect("event data is JSON"));
            }
            let chunk = tokio::time::timeout(DEADLINE, self.response.chunk())
                .await
                .expect("stream stalled")
                .expect("stream readable")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// One recorded platform call: the bearer presented and the body.
#[derive(Debug, Clone)]
pub struct Call {
    pub bearer: Option<String>,
    pub body: Value,
}

/// Decides a register answer from (attempt number from 1, bearer).
pub type RegisterScript = Box<dyn Fn(usize, Option<&str>) -> (StatusCode, Value) + Send + Sync>;

pub struct FakePlatform {
    pub url: String,
    state: Arc<PlatformState>,
}

struct PlatformState {
    register: RegisterScript,
    heartbeat_status: StatusCode,
    registers: Mutex<Vec<Call>>,
    heartbeats: Mutex<Vec<Call>>,
}

impl FakePlatform {
    pub async fn start(register: RegisterScript, heartbeat_status: StatusCode) -> FakePlatform {
        let state = Arc::new(PlatformState {
            register,
            heartbeat_status,
            registers: Mutex::default(),
            heartbeats: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/registry/register", post(register_route))
            .route("/registry/heartbeat", post(heartbeat_route))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake platform");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakePlatform { url, state }
    }

    pub fn registers(&self) -> Vec<Call> {
        lock(&self.state.registers).clone()
    }

    pub fn heartbeats(&self) -> Vec<Call> {
        lock(&self.state.heartbeats).clone()
    }

    /// Platform settings for an agent of workspace `id`, with fast timings.
    pub fn config(&self, id: &str, config_dir: PathBuf) -> PlatformConfig {
        let mut platform = PlatformConfig::new(self.url.clone(), id, config_dir);
        platform.heartbeat_interval = Duration::from_millis(100);
        platform.register_backoff = (Duration::from_millis(20), Duration::from_millis(100));
        platform.request_timeout = Duration::from_secs(5);
        platform
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

async fn register_route(
    State(state): State<Arc<PlatformState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let bearer = bearer(&headers);
    let attempt = {
        let mut calls = lock(&state.registers);
        calls.push(Call {
            bearer: bearer.clone(),
            body,
        });
        calls.len()
    };
    let (status, answer) = (state.register)(attempt, bearer.as_deref());
    (status, Json(answer))
}

async fn heartbeat_route(
    State(state): State<Arc<PlatformState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    lock(&state.heartbeats).push(Call {
        bearer: bearer(&headers),
        body,
    });
    (state.heartbeat_status, Json(json!({"status": "ok"})))
}
