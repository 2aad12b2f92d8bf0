//! `cargo xtask bench <name>`: runs a benchmark binary of the project with
//! the services it needs (a throwaway PostgreSQL), so one command measures
//! every backend in the same run.

use anyhow::{Context, Result, bail};
use std::process::Command;

use crate::pg;

pub fn run(name: Option<&str>) -> Result<()> {
    let bench = match name {
        Some("heartbeat") => "heartbeat",
        Some("fanout") => "fanout",
        Some("fleet") => "fleet",
        Some("provisioning") => return docker_bench("provisioning"),
        Some("org-import") => return docker_bench("org_import"),
        Some("proxy") => return proxy(),
        Some(other) => {
            bail!(
                "unknown benchmark `{other}` (available: fanout, fleet, heartbeat, org-import, provisioning, proxy)"
            )
        }
        None => {
            bail!(
                "name a benchmark: cargo xtask bench fanout|fleet|heartbeat|org-import|provisioning|proxy"
            )
        }
    };
    let root = crate::workspace_root()?;
    let instances = crate::instances_dir()?;
    pg::sweep_orphans(&instances)?;
    let instance = pg::Instance::at(instances.join(format!("bench-{}", std::process::id())))?;
    let guard = pg::StopOnDrop(instance);
    let url = guard
        .0
        .start()
        .context("cannot start a throwaway PostgreSQL for the benchmark")?;
    println!("throwaway PostgreSQL at {url}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["bench", "-p", "molecule-server", "--bench", bench])
        .env("MOLECULE_BENCH_DATABASE_URL", &url)
        .status()
        .context("cannot run `cargo bench`")?;
    drop(guard);
    if !status.success() {
        bail!("benchmark {bench} failed ({status})");
    }
    Ok(())
}

/// A benchmark against the real Docker engine (provisioning, org import):
/// builds the agent image first, needs no database server.
fn docker_bench(bench: &str) -> Result<()> {
    crate::image::run(&[])?;
    let root = crate::workspace_root()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["bench", "-p", "molecule-server", "--bench", bench])
        .status()
        .context("cannot run `cargo bench`")?;
    if !status.success() {
        bail!("benchmark {bench} failed ({status})");
    }
    Ok(())
}

/// The A2A proxy against direct calls and nginx: builds the release
/// binaries the benchmark starts as separate processes and installs nginx
/// and wrk (the load generator) from the machine's packages when missing.
fn proxy() -> Result<()> {
    ensure_nginx_and_wrk()?;
    let root = crate::workspace_root()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("==> building release molecule and molecule-agent");
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "molecule-server",
            "--bin",
            "molecule",
            "-p",
            "molecule-agent",
            "--bin",
            "molecule-agent",
        ])
        .status()
        .context("cannot run `cargo build`")?;
    if !status.success() {
        bail!("building the benchmark's binaries failed ({status})");
    }
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(["bench", "-p", "molecule-server", "--bench", "proxy"])
        .status()
        .context("cannot run `cargo bench`")?;
    if !status.success() {
        bail!("benchmark proxy failed ({status})");
    }
    Ok(())
}

/// Install `package` when `program` (run with `version_arg`) is not there;
/// true when it had to be installed.
fn ensure_package(program: &str, version_arg: &str, package: &str) -> Result<bool> {
    // Whatever the exit status (`wrk -v` exits 1): it ran, so it is there.
    if Command::new(program).arg(version_arg).output().is_ok() {
        return Ok(false);
    }
    println!(
        "==> {program} not found: installing it from the machine's packages (apt-get install {package})"
    );
    crate::apt_install(&[package])?;
    Ok(true)
}

/// nginx (the baseline proxy) and wrk (the load generator).
fn ensure_nginx_and_wrk() -> Result<()> {
    if ensure_package("nginx", "-v", "nginx")? {
        // The package starts a system nginx on port 80; the benchmark runs
        // its own instance, so stop that one.
        let _ = Command::new("nginx").args(["-s", "stop"]).status();
    }
    ensure_package("wrk", "-v", "wrk").map(|_| ())
}
