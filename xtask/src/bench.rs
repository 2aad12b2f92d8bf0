//! `cargo xtask bench <name>`: runs a benchmark binary of the project with
//! the services it needs (a throwaway PostgreSQL), so one command measures
//! every backend in the same run.

use anyhow::{Context, Result, bail};
use std::process::Command;

use crate::pg;

pub fn run(name: Option<&str>) -> Result<()> {
    let bench = match name {
        Some("heartbeat") => "heartbeat",
        Some("provisioning") => return provisioning(),
        Some(other) => bail!("unknown benchmark `{other}` (available: heartbeat, provisioning)"),
        None => bail!("name a benchmark: cargo xtask bench heartbeat|provisioning"),
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

/// Provisioning against the real Docker engine: builds the agent image
/// first, needs no database server.
fn provisioning() -> Result<()> {
    crate::image::run(&[])?;
    let root = crate::workspace_root()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["bench", "-p", "molecule-server", "--bench", "provisioning"])
        .status()
        .context("cannot run `cargo bench`")?;
    if !status.success() {
        bail!("benchmark provisioning failed ({status})");
    }
    Ok(())
}
