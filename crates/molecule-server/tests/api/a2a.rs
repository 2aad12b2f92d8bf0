//! The A2A proxy (api-contract §5.5): access rules, error mapping,
//! streaming, detachment from the client, and the activity and events it
//! leaves (bodies and their caps: `a2a_bodies.rs`). Shared helpers for the
//! other `a2a_*` files live here too. Agents are real `molecule-agent`s:
//! in-process ones registered like external agents (fast, every test), and
//! provisioned workspaces on the local backend and Docker.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use molecule_agent::RunningAgent;
use molecule_agent::config::{AgentConfig, ExecutorConfig};
use molecule_types::dto::RegisterRequest;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::{TestServer, eventually, start, start_with};

/// An in-process echo agent on 127.0.0.1 (advertised as `localhost`).
pub async fn spawn_agent(word_delay: Duration) -> RunningAgent {
    let config = AgentConfig::standalone(ExecutorConfig::Echo { delay: word_delay });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    molecule_agent::start(config, listener)
        .await
        .expect("agent starts")
}

/// Create a workspace and register `url` for it; returns (id, token).
pub async fn workspace_at(
    t: &TestServer,
    name: &str,
    parent: Option<Uuid>,
    url: &str,
) -> (Uuid, String) {
    let id = t.create(name, parent).await;
    let token = t
        .client
        .register(&RegisterRequest {
            id: id.to_string(),
            url: url.to_string(),
            agent_card: json!({ "name": name }),
        })
        .await
        .expect("register")
        .auth_token
        .expect("token");
    (id, token)
}

/// A workspace served by a fresh in-process echo agent.
pub async fn agent_workspace(
    t: &TestServer,
    name: &str,
    parent: Option<Uuid>,
) -> (Uuid, String, RunningAgent) {
    let agent = spawn_agent(Duration::ZERO).await;
    let (id, token) = workspace_at(t, name, parent, agent.url()).await;
    (id, token, agent)
}

/// A programmable upstream that records what reached it.
#[derive(Clone, Default)]
pub struct Upstream {
    pub hits: Arc<AtomicUsize>,
    pub last: Arc<std::sync::Mutex<Option<(HeaderMap, Bytes)>>>,
}

/// How a test upstream answers its n-th request.
type Answer = Arc<dyn Fn(usize) -> (u16, Value) + Send + Sync>;

/// Serve `answer(hit number)` → (status, body) on `POST /`.
pub async fn spawn_upstream(
    answer: impl Fn(usize) -> (u16, Value) + Send + Sync + 'static,
) -> (String, Upstream) {
    let up = Upstream::default();
    let answer = Arc::new(answer);
    let state = (up.clone(), answer);
    async fn handle(
        State((up, answer)): State<(Upstream, Answer)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, axum::Json<Value>) {
        let n = up.hits.fetch_add(1, Ordering::SeqCst);
        *up.last.lock().unwrap() = Some((headers, body));
        let (status, v) = answer(n);
        (StatusCode::from_u16(status).unwrap(), axum::Json(v))
    }
    let state: (Upstream, Answer) = (state.0, state.1);
    let app = Router::new().route("/", post(handle)).with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://localhost:{port}"), up)
}

pub fn send_body(text: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": "req-1", "method": "message/send",
        "params": { "message": { "role": "user", "messageId": "m-1",
            "parts": [{ "kind": "text", "text": text }] } }
    })
}

/// The text of the first text part anywhere in a JSON-RPC result.
pub fn reply_text(v: &Value) -> String {
    let r = &v["result"];
    for parts in [
        &r["parts"],
        &r["artifacts"][0]["parts"],
        &r["status"]["message"]["parts"],
    ] {
        if let Some(t) = parts[0]["text"].as_str() {
            return t.to_string();
        }
    }
    panic!("no reply text in {v}")
}

#[tokio::test]
async fn the_access_matrix_follows_the_hierarchy() {
    let t = start().await;
    // A ─ B ─ D        E ─ F
    //   └ C
    let (a, ta, _ga) = agent_workspace(&t, "A", None).await;
    let (b, tb, _gb) = agent_workspace(&t, "B", Some(a)).await;
    let (c, tc, _gc) = agent_workspace(&t, "C", Some(a)).await;
    let (d, td, _gd) = agent_workspace(&t, "D", Some(b)).await;
    let (e, te, _ge) = agent_workspace(&t, "E", None).await;
    let (f, tf, _gf) = agent_workspace(&t, "F", Some(e)).await;
    let token = |id: Uuid| -> &str {
        [(a, &ta), (b, &tb), (c, &tc), (d, &td), (e, &te), (f, &tf)]
            .into_iter()
            .find(|(i, _)| *i == id)
            .unwrap()
            .1
    };
    let cases = [
        ("self", b, b, true),
        ("siblings", b, c, true),
        ("root siblings", a, e, true),
        ("parent to child", a, b, true),
        ("child to parent", b, a, true),
        ("skip-level down", a, d, true),
        ("skip-level up", d, a, true),
        ("nephew to uncle", d, c, false),
        ("uncle to nephew", c, d, false),
        ("cross-tree child", f, b, false),
        ("cross-tree to child", a, f, false),
    ];
    for (what, caller, target, allowed) in cases {
        let r = t
            .as_workspace(caller, token(caller))
            .a2a(target, &send_body(what))
            .await
            .unwrap();
        if allowed {
            assert_eq!(r.status, 200, "{what}: {}", r.text());
            assert_eq!(
                reply_text(&r.json().unwrap()),
                format!("echo: {what}"),
                "{what}"
            );
        } else {
            assert_eq!(r.status, 403, "{what}: {}", r.text());
            assert_eq!(
                r.json().unwrap()["error"],
                "access denied: workspaces cannot communicate per hierarchy rules"
            );
        }
    }
    // Platform components and the canvas (development mode) are trusted.
    let system = t
        .client
        .clone()
        .with_header("X-Workspace-ID", "system:test");
    assert_eq!(system.a2a(f, &send_body("sys")).await.unwrap().status, 200);
    assert_eq!(
        t.client.a2a(d, &send_body("canvas")).await.unwrap().status,
        200
    );
    // A workspace caller must present its own token.
    let no_token = t.client.clone().with_workspace_id(Some(b));
    let r = no_token.a2a(a, &send_body("x")).await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json().unwrap()["error"], "missing caller auth token");
    let wrong = t.as_workspace(b, &tc);
    let r = wrong.a2a(a, &send_body("x")).await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json().unwrap()["error"], "invalid caller auth token");
}

#[tokio::test]
async fn production_needs_an_operator_token_for_canvas_and_system_calls() {
    let t = start_with(|c| {
        c.mode = molecule_server::config::Mode::Production;
        c.admin_token = Some("op-secret".into());
        // The in-process agent listens on loopback, which production
        // closes to supplied URLs unless the operator opens it.
        c.outbound_allow = molecule_server::app::outbound::Network::parse_list("127.0.0.0/8")
            .expect("valid allow-list");
    })
    .await;
    let admin = t.client.clone().with_token(Some("op-secret".into()));
    let agent = spawn_agent(Duration::ZERO).await;
    let created = admin
        .create_workspace(&molecule_types::dto::CreateWorkspace {
            name: "w".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = created.id;
    let own = created
        .auth_token
        .expect("no runtime backend: the token comes with the workspace");
    let token = admin.test_token(id).await.err();
    assert!(token.is_some(), "no test tokens in production");
    // Registration presents the workspace's credential.
    let reg = t
        .as_workspace(id, &own)
        .register(&RegisterRequest {
            id: id.to_string(),
            url: agent.url().to_string(),
            agent_card: json!({}),
        })
        .await
        .unwrap();
    assert!(reg.auth_token.is_none(), "no second credential");
    let r = t.client.a2a(id, &send_body("anon")).await.unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    let r = t
        .client
        .clone()
        .with_header("X-Workspace-ID", "system:anything")
        .a2a(id, &send_body("forged"))
        .await
        .unwrap();
    assert_eq!(r.status, 401, "a system prefix is not a credential");
    let r = admin.a2a(id, &send_body("op")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // A workspace caller always proves who it is, even one that has no
    // token yet, and even when calling itself.
    let sibling = admin
        .create_workspace(&molecule_types::dto::CreateWorkspace {
            name: "sibling".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let claim = t.client.clone().with_workspace_id(Some(sibling));
    let r = claim.a2a(id, &send_body("claim")).await.unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json().unwrap()["error"], "missing caller auth token");
    let r = t
        .as_workspace(id, &own)
        .a2a(id, &send_body("self"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = t
        .as_workspace(sibling, &own)
        .a2a(id, &send_body("borrowed"))
        .await
        .unwrap();
    assert_eq!(r.status, 401, "another workspace's token");
    assert_eq!(r.json().unwrap()["error"], "invalid caller auth token");
}

#[tokio::test]
async fn an_unreachable_agent_without_a_runtime_to_check_is_a_502() {
    let t = start().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (id, _) = workspace_at(&t, "gone", None, &format!("http://localhost:{port}")).await;
    let r = t.client.a2a(id, &send_body("x")).await.unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(
        r.json().unwrap()["error"],
        "failed to reach workspace agent"
    );
}

#[tokio::test]
async fn a_slow_agent_past_the_deadline_is_busy_with_retry_after() {
    let t = start().await;
    let agent = spawn_agent(Duration::from_millis(1500)).await;
    let (id, _) = workspace_at(&t, "slow", None, agent.url()).await;
    let r = t
        .client
        .clone()
        .with_header("X-Timeout", "1")
        .a2a(id, &send_body("take your time"))
        .await
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("30"));
    let body = r.json().unwrap();
    assert_eq!(body["busy"], true);
    assert_eq!(body["retry_after"], 30);
}

#[tokio::test]
async fn an_agent_that_drops_the_connection_is_busy_and_a_refused_one_unreachable() {
    use tokio::io::AsyncReadExt;
    let t = start().await;
    // Reads the request, then closes the connection without an answer.
    let dropper = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://localhost:{}", dropper.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = dropper.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
        }
    });
    let (id, _) = workspace_at(&t, "dropper", None, &url).await;
    let r = t.client.a2a(id, &send_body("hello")).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json().unwrap()["busy"], true);

    // Nothing listens: the connection is refused.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://localhost:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let (id, _) = workspace_at(&t, "nobody", None, &url).await;
    let r = t.client.a2a(id, &send_body("hello")).await.unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
}

#[tokio::test]
async fn a_client_that_goes_away_does_not_cancel_the_agent() {
    let t = start().await;
    let agent = spawn_agent(Duration::from_millis(150)).await;
    let (id, token) = workspace_at(&t, "worker", None, agent.url()).await;
    // Give up on the answer after 100 ms; the agent needs ~600 ms.
    let body = send_body("one two three");
    let call = t.client.a2a(id, &body);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), call)
            .await
            .is_err()
    );
    let row = eventually(Duration::from_secs(10), || async {
        let rows = t
            .as_workspace(id, &token)
            .activity(id, "type=a2a_receive")
            .await
            .unwrap();
        rows.into_iter().find(|r| r["status"] == "ok")
    })
    .await
    .expect("the call ran to its end and was logged");
    assert_eq!(reply_text(&row["response_body"]), "echo: one two three");
}

#[tokio::test]
async fn streams_are_relayed_event_by_event() {
    let t = start().await;
    let agent = spawn_agent(Duration::from_millis(300)).await;
    let (id, _) = workspace_at(&t, "streamer", None, agent.url()).await;
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "message/stream",
        "params": { "message": { "role": "user", "messageId": "s-1",
            "parts": [{ "kind": "text", "text": "a b c d e" }] } }
    });
    let started = Instant::now();
    molecule_client::install_crypto_provider();
    let mut resp = reqwest::Client::new()
        .post(format!("{}/workspaces/{id}/a2a", t.server.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut first = None;
    let mut text = String::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        first.get_or_insert_with(|| started.elapsed());
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let total = started.elapsed();
    let first = first.expect("some events");
    assert!(text.contains("data:"), "{text}");
    assert!(text.matches("data:").count() >= 3, "several events: {text}");
    // Seven words at 300 ms each: the agent takes ~2 s; the first event is
    // relayed when the agent sends it, not when it finishes.
    assert!(
        first + Duration::from_millis(900) < total,
        "first event at {first:?}, stream ended at {total:?}"
    );
}

#[tokio::test]
async fn calls_leave_activity_and_canvas_calls_broadcast_the_answer() {
    let t = start().await;
    let (parent, parent_token, _g1) = agent_workspace(&t, "parent", None).await;
    let (child, child_token, _g2) = agent_workspace(&t, "child", Some(parent)).await;
    let mut ws = t.client.subscribe().await.unwrap();

    let r = t
        .client
        .a2a(child, &send_body("from canvas"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    ws.next_matching(|e| e.event == "ACTIVITY_LOGGED", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("ACTIVITY_LOGGED");
    let ev = ws
        .next_matching(|e| e.event == "A2A_RESPONSE", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("A2A_RESPONSE for a canvas call");
    assert_eq!(ev.workspace_id, child.to_string());
    assert_eq!(ev.payload["method"], "message/send");
    assert_eq!(
        reply_text(&ev.payload["response_body"]),
        "echo: from canvas"
    );
    assert!(ev.payload["duration_ms"].is_u64());

    let r = t
        .as_workspace(child, &child_token)
        .a2a(parent, &send_body("from child"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let system = t
        .client
        .clone()
        .with_header("X-Workspace-ID", "webhook:github");
    assert_eq!(
        system.a2a(parent, &send_body("hook")).await.unwrap().status,
        200
    );

    let parent_client = t.as_workspace(parent, &parent_token);
    let rows = eventually(Duration::from_secs(5), || async {
        let rows = parent_client
            .activity(parent, "type=a2a_receive")
            .await
            .unwrap();
        (rows.len() == 2).then_some(rows)
    })
    .await
    .expect("two rows on the parent");
    let from_child = rows
        .iter()
        .find(|r| r["source_id"] == child.to_string())
        .unwrap();
    assert_eq!(from_child["method"], "message/send");
    assert_eq!(from_child["target_id"], parent.to_string());
    assert_eq!(from_child["status"], "ok");
    assert_eq!(from_child["summary"], "message/send → parent");
    assert!(from_child["duration_ms"].is_i64());
    assert_eq!(
        from_child["request_body"]["params"]["message"]["parts"][0]["text"],
        "from child"
    );
    let hook = rows.iter().find(|r| r["source_id"].is_null()).unwrap();
    assert_eq!(
        hook["source_label"], "webhook:github",
        "system callers are not lost"
    );
    let canvas_rows = t
        .as_workspace(child, &child_token)
        .activity(child, "source=canvas")
        .await
        .unwrap();
    assert_eq!(canvas_rows.len(), 1);
    let agent_rows = parent_client
        .activity(parent, "source=agent")
        .await
        .unwrap();
    assert_eq!(agent_rows.len(), 1);
}

/// An A2A client given the proxy URL finds the card relative to it, with
/// the proxy URL in it, and reaches the agent through it; an external
/// workspace without a registered card has its card fetched from the
/// agent; strangers are refused as the proxy refuses them.
#[tokio::test]
async fn the_agent_card_is_served_at_the_proxy_url() {
    let t = start().await;
    let (id, token, _agent) = agent_workspace(&t, "carded", None).await;
    let base = t.server.url();
    let proxy_url = format!("{base}/workspaces/{id}/a2a");
    let host = base.trim_start_matches("http://");
    for path in ["agent-card.json", "agent.json"] {
        let (s, card) = crate::call(
            &t.client,
            molecule_client::Method::GET,
            &format!("/workspaces/{id}/a2a/.well-known/{path}"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{path}: {card}");
        assert_eq!(card["name"], "carded", "the registered card");
        assert_eq!(card["url"], format!("http://{host}/workspaces/{id}/a2a"));
    }
    // Follow the card: the URL it names takes a message/send.
    let reply = reqwest::Client::new()
        .post(&proxy_url)
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "message/send", "params": {"message": {
            "role": "user", "messageId": "m1", "parts": [{"kind": "text", "text": "via the card"}]}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["id"], 7);

    // An external agent created with a URL and no card yet: fetched.
    let agent = spawn_agent(Duration::ZERO).await;
    let ext = t
        .client
        .create_workspace(&molecule_types::dto::CreateWorkspace {
            name: "outside".into(),
            external: true,
            url: Some(agent.url().to_string()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let (s, card) = crate::call(
        &t.client,
        molecule_client::Method::GET,
        &format!("/workspaces/{ext}/a2a/.well-known/agent-card.json"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{card}");
    assert!(card["skills"].is_array(), "the agent's own card: {card}");
    assert_eq!(card["url"], format!("http://{host}/workspaces/{ext}/a2a"));

    // A workspace that may not talk to the target is refused, as by the proxy.
    let (other, other_token, _a2) = agent_workspace(&t, "stranger", Some(ext)).await;
    let c = t.as_workspace(other, &other_token);
    let (s, _) = crate::call(
        &c,
        molecule_client::Method::GET,
        &format!("/workspaces/{id}/a2a/.well-known/agent-card.json"),
        None,
    )
    .await;
    assert_eq!(s, 403, "a child of another root may not reach this one");
    let (s, _) = crate::call(
        &t.as_workspace(id, &token),
        molecule_client::Method::GET,
        &format!(
            "/workspaces/{}/a2a/.well-known/agent-card.json",
            Uuid::new_v4()
        ),
        None,
    )
    .await;
    assert!(s == 403 || s == 404, "{s}");
    t.server.shutdown().await.unwrap();
}
