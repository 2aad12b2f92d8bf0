//! Adversarial tests: activity (issue 12, items 5 and 6). Large reports
//! must not grow memory or the database without bound, one workspace's
//! flood must not stop another's writes, and what the API acknowledges
//! must be committed: readable at once, and still there after `kill -9`.

use molecule_client::{Client, Method};
use molecule_server::app::activity::BudgetConfig;
use molecule_server::app::activity::fields::MAX_TEXT_BYTES;
use molecule_server::config::Database;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

use crate::{TempDir, TestServer, call, eventually, fresh_database, start_on, start_with};

const KIB: usize = 1 << 10;

/// A registered workspace and a client acting as it.
async fn agent(t: &TestServer, name: &str) -> (Uuid, Client) {
    let id = t.create(name, None).await;
    let token = t.register(id).await;
    (id, t.as_workspace(id, &token))
}

/// A report whose request body is a string of `kib` KiB.
fn report(summary: &str, kib: usize) -> Value {
    json!({
        "activity_type": "agent_log",
        "summary": summary,
        "request_body": "x".repeat(kib * KIB),
    })
}

async fn post(me: &Client, id: Uuid, body: &Value) -> molecule_client::RawResponse {
    me.request(
        Method::POST,
        &format!("/workspaces/{id}/activity"),
        Some(body),
    )
    .await
    .expect("request sent")
}

/// The test's own connection to the server's database, to hold locks and
/// make inserts fail under the writer.
enum Db {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Db {
    async fn connect(database: &Database) -> Db {
        use sqlx::Connection;
        match database {
            Database::Sqlite(path) => Db::Sqlite(
                sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                    .await
                    .expect("open the SQLite file"),
            ),
            Database::Postgres(url) => Db::Postgres(
                sqlx::PgConnection::connect(url)
                    .await
                    .expect("connect to PostgreSQL"),
            ),
        }
    }

    /// Run `sqlite` or `postgres`, whichever this database is.
    async fn exec(&mut self, sqlite: &'static str, postgres: &'static str) {
        match self {
            Db::Sqlite(c) => sqlx::query(sqlite).execute(&mut *c).await.map(|_| ()),
            Db::Postgres(c) => sqlx::raw_sql(postgres).execute(&mut *c).await.map(|_| ()),
        }
        .expect("test SQL runs");
    }

    /// Block every insert into `activity_logs` until [`Db::release`].
    async fn block_activity_writes(&mut self) {
        self.exec(
            "BEGIN IMMEDIATE",
            "BEGIN; LOCK TABLE activity_logs IN SHARE MODE",
        )
        .await;
    }

    /// Make every insert into `activity_logs` fail (reads still work).
    async fn refuse_activity_inserts(&mut self) {
        self.exec(
            "CREATE TRIGGER refuse BEFORE INSERT ON activity_logs \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
             CREATE TRIGGER refuse BEFORE INSERT ON activity_logs \
             FOR EACH ROW EXECUTE FUNCTION refuse()",
        )
        .await;
    }

    async fn allow_activity_inserts(&mut self) {
        self.exec(
            "DROP TRIGGER refuse",
            "DROP TRIGGER refuse ON activity_logs",
        )
        .await;
    }

    async fn release(&mut self) {
        self.exec("COMMIT", "COMMIT").await;
    }
}

#[tokio::test]
async fn a_flooding_workspace_gets_429_while_another_still_writes() {
    let t = start_with(|c| {
        c.activity_budget = BudgetConfig {
            bytes: 1 << 20,
            rows: 1_000,
            window: Duration::from_secs(600),
        }
    })
    .await;
    let (a, flooder) = agent(&t, "flooder").await;
    let (b, quiet) = agent(&t, "quiet").await;
    // 200 KiB reports (stored whole, under the body cap): about five fit
    // in a 1 MiB budget.
    let mut accepted = 0;
    let refused = loop {
        let r = post(&flooder, a, &report("flood", 200)).await;
        match r.status {
            200 => accepted += 1,
            429 => break r,
            other => panic!("unexpected {other}"),
        }
        assert!(accepted < 20, "the budget never refused the flood");
    };
    assert!(accepted >= 4, "the budget let {accepted} reports through");
    let body: Value = refused.json().expect("JSON body");
    assert_eq!(body["error"], "activity write budget exceeded");
    let retry_after = body["retry_after"].as_u64().expect("retry_after");
    assert!(retry_after >= 1, "{body}");
    let header = refused
        .header("retry-after")
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(header, Some(retry_after), "Retry-After matches the body");

    let r = post(&quiet, b, &report("still here", 200)).await;
    assert_eq!(r.status, 200, "another workspace still writes");
    let rows = quiet.activity(b, "").await.unwrap();
    assert_eq!(rows.len(), 1);
    let rows = flooder.activity(a, "").await.unwrap();
    assert_eq!(rows.len(), accepted, "refused reports are not stored");
}

#[tokio::test]
async fn stored_fields_are_capped_with_a_marker() {
    let t = start_with(|_| {}).await;
    let (a, me) = agent(&t, "verbose").await;
    let big = "x".repeat(600 * KIB);
    let long = "é".repeat(5 * KIB);
    let r = post(
        &me,
        a,
        &json!({
            "activity_type": "error",
            "summary": long,
            "error_detail": long,
            "method": long,
            "request_body": big,
            "response_body": {"text": "y".repeat(300 * KIB)},
        }),
    )
    .await;
    assert_eq!(r.status, 200);
    let rows = me.activity(a, "").await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        row["request_body"],
        json!({"truncated": true, "bytes": big.len() + 2})
    );
    assert_eq!(row["response_body"]["truncated"], true);
    let marker = format!("…[truncated, {} bytes]", long.len());
    for field in ["summary", "error_detail", "method"] {
        let text = row[field].as_str().expect(field);
        assert!(
            text.len() <= MAX_TEXT_BYTES,
            "{field}: {} bytes",
            text.len()
        );
        assert!(text.ends_with(&marker), "{field} ends with the marker");
        assert!(text.starts_with("éé"), "{field} keeps its start");
    }
}

/// The caps must not cut the `delegation_id` out of a delegation's rows:
/// updates find the tracking row by it.
#[tokio::test]
async fn a_large_delegation_keeps_its_id_under_the_caps() {
    let t = start_with(|_| {}).await;
    let (a, me) = agent(&t, "delegator").await;
    let (b, _) = agent(&t, "worker").await;
    let big = "t".repeat(600 * KIB);
    let (status, body) = call(
        &me,
        Method::POST,
        &format!("/workspaces/{a}/delegations/record"),
        Some(json!({"target_id": b, "task": big, "delegation_id": "d-big"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = call(
        &me,
        Method::POST,
        &format!("/workspaces/{a}/delegations/d-big/update"),
        Some(json!({"status": "completed", "response_preview": big})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, rows) = call(
        &me,
        Method::GET,
        &format!("/workspaces/{a}/delegations"),
        None,
    )
    .await;
    let rows = rows.as_array().expect("a list");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in rows {
        assert_eq!(r["delegation_id"], "d-big", "{}", r["type"]);
    }
    let tracking = rows.iter().find(|r| r["type"] == "delegate").unwrap();
    assert_eq!(tracking["status"], "completed");
}

#[tokio::test]
async fn the_queue_never_holds_more_than_its_byte_bound() {
    let t = start_with(|c| c.activity_queue_bytes = 1 << 20).await;
    let (a, me) = agent(&t, "burst").await;
    // Verifies the token now: nothing on the report path then needs the
    // database but the writer.
    assert!(me.activity(a, "").await.unwrap().is_empty());
    let mut db = Db::connect(&t.server.app.config().database).await;
    db.block_activity_writes().await;
    // Twelve 200 KiB reports while nothing can be written: the queue takes
    // what fits in 1 MiB (five) and refuses the rest at once.
    let answers: Arc<Mutex<Vec<(u16, Value)>>> = Arc::default();
    let mut pending = Vec::new();
    for i in 0..12 {
        let (me, answers) = (me.clone(), answers.clone());
        pending.push(tokio::spawn(async move {
            let r = post(&me, a, &report(&format!("r{i}"), 200)).await;
            let body = r.json().unwrap_or(Value::Null);
            answers.lock().unwrap().push((r.status, body));
            r.status
        }));
    }
    let refused = eventually(Duration::from_secs(10), || async {
        let answers = answers.lock().unwrap();
        (answers.len() >= 7).then(|| answers.clone())
    })
    .await
    .expect("the reports that do not fit are refused while the writer is blocked");
    let (queued, _, bound) = t.server.app.activity_queue_bytes();
    assert!(
        queued <= bound,
        "{queued} queued bytes over a bound of {bound}"
    );
    assert!(queued > 512 * KIB, "the queue was in use");
    for (status, body) in &refused {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["error"], "activity queue full");
        assert_eq!(body["retry_after"], 1);
    }
    db.release().await;
    let mut statuses = Vec::new();
    for p in pending {
        statuses.push(p.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 5, "{statuses:?}");
    let (_, peak, bound) = t.server.app.activity_queue_bytes();
    assert!(peak <= bound);
    assert_eq!(me.activity(a, "").await.unwrap().len(), ok);
    let metrics = t
        .client
        .request(Method::GET, "/metrics", None)
        .await
        .unwrap()
        .text();
    assert!(
        metrics.contains(&format!("molecule_activity_queue_max_bytes {}", 1 << 20)),
        "{metrics}"
    );
}

#[tokio::test]
async fn read_after_write_always_sees_the_row() {
    let t = start_with(|_| {}).await;
    let (a, me) = agent(&t, "reader").await;
    for i in 0..100 {
        let summary = format!("step {i}");
        me.report_activity(
            a,
            &json!({"activity_type": "task_update", "summary": summary}),
        )
        .await
        .unwrap();
        let rows = me.activity(a, "limit=1").await.unwrap();
        assert_eq!(rows.first().map(|r| &r["summary"]), Some(&json!(summary)));
    }
}

/// Group commit still batches: concurrent reports share commits instead
/// of paying one each.
#[tokio::test]
async fn concurrent_reports_share_commits() {
    const SENDERS: usize = 32;
    const EACH: usize = 8;
    let t = start_with(|_| {}).await;
    let (a, me) = agent(&t, "busy").await;
    let metrics = &t.server.app.metrics();
    let before = metrics.get("molecule_activity_batches_total", &[]);
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let me = me.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..EACH {
                let body = json!({"activity_type": "agent_log", "summary": format!("{s}/{i}")});
                me.report_activity(a, &body).await.expect("logged");
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let batches = metrics.get("molecule_activity_batches_total", &[]) - before;
    assert!(batches >= 1.0);
    assert!(
        batches < (SENDERS * EACH) as f64,
        "{batches} commits for {} reports",
        SENDERS * EACH
    );
    let rows = me.activity(a, "limit=500").await.unwrap();
    assert_eq!(rows.len(), SENDERS * EACH);
}

#[tokio::test]
async fn writes_that_fail_are_not_acknowledged() {
    let t = start_with(|_| {}).await;
    let (a, me) = agent(&t, "unlucky").await;
    let (b, _) = agent(&t, "worker").await;
    let (status, _) = call(
        &me,
        Method::POST,
        &format!("/workspaces/{a}/delegations/record"),
        Some(json!({"target_id": b, "task": "t", "delegation_id": "d1"})),
    )
    .await;
    assert_eq!(status, 202);
    let mut db = Db::connect(&t.server.app.config().database).await;
    db.refuse_activity_inserts().await;
    let (status, body) = call(
        &me,
        Method::POST,
        &format!("/workspaces/{a}/activity"),
        Some(json!({"activity_type": "agent_log", "summary": "lost"})),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "failed to log activity");
    let (status, body) = call(
        &me,
        Method::POST,
        &format!("/workspaces/{a}/delegations/d1/update"),
        Some(json!({"status": "completed", "response_preview": "done"})),
    )
    .await;
    assert_eq!(status, 500, "a failed update is not a 200: {body}");
    assert_eq!(body["error"], "failed to update delegation");
    db.allow_activity_inserts().await;
    me.report_activity(a, &json!({"activity_type": "agent_log", "summary": "kept"}))
        .await
        .unwrap();
    let rows = me.activity(a, "type=agent_log").await.unwrap();
    let summaries: Vec<&Value> = rows.iter().map(|r| &r["summary"]).collect();
    assert_eq!(
        summaries,
        [&json!("kept")],
        "the refused report is not stored"
    );
}

/// Reports in the burst of the `kill -9` test, and how many must have been
/// acknowledged before the kill.
const BURST: usize = 400;
const KILL_AFTER: usize = 100;

#[tokio::test]
async fn kill_9_during_a_burst_loses_no_acknowledged_report() {
    let (database, sqlite_dir) = fresh_database().await;
    let data_dir = sqlite_dir.unwrap_or_default();
    let (mut child, url) = spawn_platform(&database, &data_dir).await;
    let platform = Client::new(url.clone());
    let id = platform
        .create_workspace(&molecule_types::dto::CreateWorkspace {
            name: "burst".into(),
            ..Default::default()
        })
        .await
        .expect("create")
        .id;
    let token = platform
        .register(&molecule_types::dto::RegisterRequest {
            id: id.to_string(),
            url: "http://agent.test:8000".into(),
            agent_card: json!({"name": "burst"}),
        })
        .await
        .expect("register")
        .auth_token
        .expect("token");
    let me = platform
        .with_workspace_id(Some(id))
        .with_token(Some(token.clone()));

    // 32 concurrent senders; each report has a unique summary and the ones
    // answered 200 are recorded.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..32 {
        let (me, acked, next) = (me.clone(), acked.clone(), next.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= BURST {
                    return;
                }
                let summary = format!("burst {i}");
                let body = json!({"activity_type": "agent_log", "summary": summary});
                match me.report_activity(id, &body).await {
                    Ok(_) => acked.lock().unwrap().push(summary),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    eventually(Duration::from_secs(30), || async {
        (acked.lock().unwrap().len() >= KILL_AFTER).then_some(())
    })
    .await
    .expect("reports are acknowledged");
    child.start_kill().expect("SIGKILL");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the process dies")
        .expect("wait");
    assert!(!status.success(), "killed, not exited: {status:?}");
    for s in senders {
        let _ = tokio::time::timeout(Duration::from_secs(10), s)
            .await
            .expect("senders stop once the server is gone");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() < BURST,
        "the kill landed mid-burst ({} of {BURST} acknowledged)",
        acked.len()
    );

    let replica = start_on(database, |_| {}).await;
    let reader = Client::new(replica.url())
        .with_workspace_id(Some(id))
        .with_token(Some(token));
    let rows = reader.activity(id, "limit=500").await.expect("list");
    let stored: std::collections::HashSet<&str> =
        rows.iter().filter_map(|r| r["summary"].as_str()).collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|s| !stored.contains(s.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged reports lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    replica.shutdown().await.unwrap();
    drop::<TempDir>(data_dir);
}

#[path = "../../../benches/common/serve.rs"]
pub(crate) mod serve;

/// `molecule serve` as a child process (development mode, no provisioner)
/// on `database`, killed when dropped; and the URL it listens on.
pub async fn spawn_platform(
    database: &Database,
    data_dir: &crate::TempDir,
) -> (tokio::process::Child, String) {
    let pg = match database {
        Database::Postgres(url) => Some(url.as_str()),
        Database::Sqlite(_) => None,
    };
    let serve::Serve { child, url } = serve::serve(&data_dir.0, pg, &[]).await;
    (child, url)
}
