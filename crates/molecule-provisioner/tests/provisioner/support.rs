//! Helpers shared by the backend tests: specs, temp dirs, polling with a
//! deadline, a minimal HTTP/1.0 GET, and the file-path refusal check.

use molecule_provisioner::{Observation, ProvisionError, Provisioner, WorkspaceSpec};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

pub fn spec(image: &str, tier: i32, files: &[(&str, &str)]) -> WorkspaceSpec {
    let id = Uuid::new_v4();
    WorkspaceSpec {
        workspace_id: id,
        name: format!("test-{id}"),
        tier,
        runtime: "test".into(),
        image: image.into(),
        env: vec![("WORKSPACE_ID".into(), id.to_string())],
        config_files: files
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect(),
        workspace_dir: None,
        generation: "1".into(),
    }
}

/// The operation refused its path.
pub fn bad_path<T>(result: &Result<T, ProvisionError>) -> bool {
    matches!(result, Err(ProvisionError::BadPath(_)))
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("molecule-prov-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Poll `check` until it returns `Some`, or panic after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until `inspect` reports `want`.
pub async fn wait_for_observation(p: &dyn Provisioner, id: Uuid, want: Observation) {
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let obs = p.inspect(id).await;
        if obs == want {
            return;
        }
        last = Some(obs);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("inspect never reported {want:?}; last {last:?}");
}

/// `GET path` over HTTP/1.0: (status, body), or None if the connection
/// or the exchange failed.
pub async fn http_get(url: &str, path: &str) -> Option<(u16, String)> {
    let authority = url.strip_prefix("http://")?;
    let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}
