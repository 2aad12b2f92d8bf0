//! `molecule serve` as a child process: for benchmarks that measure the
//! platform as it runs (its own process, CPU and memory from /proc) and
//! for tests that kill it for real (included by `tests/api` too).

use std::path::Path;
use tokio::io::AsyncBufReadExt;

/// A development-mode `molecule serve` without a provisioner, on SQLite in
/// `dir` or on the PostgreSQL database `pg`; killed when dropped.
pub struct Serve {
    pub child: tokio::process::Child,
    pub url: String,
}

pub async fn serve(dir: &Path, pg: Option<&str>, env: &[(&str, &str)]) -> Serve {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_molecule"));
    command
        .arg("serve")
        .env("PORT", "0")
        .env("MOLECULE_BIND", "127.0.0.1")
        .env("MOLECULE_DATA_DIR", dir)
        .env("MOLECULE_PROVISIONER", "none")
        .env("MOLECULE_ENV", "development")
        .env("MOLECULE_A2A_PROBE", "off")
        .env("RATE_LIMIT", "100000000")
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(url) = pg {
        command.env("DATABASE_URL", url);
    }
    let mut child = command.spawn().expect("start molecule serve");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut said = Vec::new();
        loop {
            let Some(line) = lines.next_line().await.expect("read stderr") else {
                panic!(
                    "molecule serve ended before listening:\n{}",
                    said.join("\n")
                );
            };
            if let Some(rest) = line.strip_prefix("molecule: listening on ") {
                break rest.split_whitespace().next().expect("a URL").to_string();
            }
            said.push(line);
        }
    })
    .await
    .expect("molecule serve listens within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Serve { child, url }
}
