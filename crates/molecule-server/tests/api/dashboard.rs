//! `molecule dashboard` end to end: the built binary in a pseudo-terminal
//! (util-linux `script`), its screen rebuilt with a VT100 parser, against a
//! real server with a real agent. An event changes a status on screen; a
//! key press restarts the workspace.

use std::num::NonZeroU16;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::TempDir;
use crate::lifecycle::{Backend, start_backend, wait_status};
use molecule_types::WorkspaceStatus;

const ROWS: NonZeroU16 = NonZeroU16::new(40).unwrap();
const COLS: NonZeroU16 = NonZeroU16::new(140).unwrap();

struct Screen {
    _child: Child,
    input: ChildStdin,
    output: ChildStdout,
    parser: vt100::Parser,
}

impl Screen {
    async fn start(url: &str, token: &str, config: &TempDir) -> Screen {
        let bin = env!("CARGO_BIN_EXE_molecule");
        let inner = format!(
            "stty rows {ROWS} cols {COLS}; exec {bin} --url {url} --token={token} dashboard"
        );
        let mut child = tokio::process::Command::new("script")
            .args(["-q", "-f", "-e", "-c", &inner, "/dev/null"])
            .env("MOLECULE_CONFIG", config.0.join("config.json"))
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("util-linux script runs");
        Screen {
            input: child.stdin.take().unwrap(),
            output: child.stdout.take().unwrap(),
            _child: child,
            parser: vt100::Parser::new(ROWS, COLS, 0),
        }
    }

    /// Reads the terminal until `pred` holds for the screen's text.
    async fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut buf = [0u8; 8192];
        loop {
            let contents = self.parser.screen().contents();
            if pred(&contents) {
                return contents;
            }
            match tokio::time::timeout_at(deadline, self.output.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.parser.process(&buf[..n]),
                Ok(_) => panic!("the dashboard ended before {what}:\n{contents}"),
                Err(_) => panic!("no {what} on screen within 60 s:\n{contents}"),
            }
        }
    }

    async fn keys(&mut self, keys: &str) {
        self.input.write_all(keys.as_bytes()).await.unwrap();
        self.input.flush().await.unwrap();
    }
}

/// The row of the tree that shows `name`.
fn row<'a>(screen: &'a str, name: &str) -> &'a str {
    screen.lines().find(|l| l.contains(name)).unwrap_or("")
}

#[tokio::test]
async fn the_dashboard_shows_a_live_org_and_restarts_on_a_key() {
    let t = start_backend(Backend::Local, |_| {})
        .await
        .expect("local backend");
    let id = t.create("pty-agent", None).await;
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    let token = t.client.test_token(id).await.unwrap().auth_token;
    let config = TempDir::default();
    let mut screen = Screen::start(&t.server.url(), &token, &config).await;
    screen
        .wait_for("the online workspace", |s| {
            row(s, "pty-agent").contains("online") && s.contains("live feed connected")
        })
        .await;

    // An event (a pause through the API) changes the status on screen.
    t.as_workspace(id, &token)
        .request(
            molecule_client::Method::POST,
            &format!("/workspaces/{id}/pause"),
            None,
        )
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    screen
        .wait_for("the paused status", |s| {
            row(s, "pty-agent").contains("paused")
        })
        .await;

    // `r` asks, `y` confirms: the workspace restarts and comes back online.
    screen.keys("r").await;
    screen
        .wait_for("the confirmation", |s| s.contains("restart pty-agent? y/N"))
        .await;
    screen.keys("y").await;
    screen
        .wait_for("the restart", |s| {
            s.contains("restart: done") && row(s, "pty-agent").contains("online")
        })
        .await;
    wait_status(
        &t.client,
        id,
        WorkspaceStatus::Online,
        Duration::from_secs(60),
    )
    .await;
    // The key press provisioned the workspace a second time.
    let provisioned = crate::eventually(Duration::from_secs(10), || async {
        let events = t.client.events(Some(id)).await.ok()?;
        let n = events
            .iter()
            .filter(|e| e.event_type == "WORKSPACE_PROVISIONING")
            .count();
        (n >= 2).then_some(n)
    })
    .await;
    assert!(provisioned.is_some(), "no second WORKSPACE_PROVISIONING");
    screen.keys("q").await;
}
