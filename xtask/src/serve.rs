//! `cargo xtask serve [flags of molecule serve…]`: the README's run command,
//! everything a first run needs in one step:
//!
//! 1. `molecule` and `molecule-agent` in release, in one cargo build (the
//!    agent is the local backend's program, found next to `molecule`);
//! 2. when a Docker engine answers and the provisioner may use it, the
//!    `molecule/agent` image (`cargo xtask image`: a static agent, FROM
//!    scratch; with nothing changed, cargo and Docker's layer cache make
//!    this take seconds), so a workspace created right after start comes
//!    online;
//! 3. `molecule serve` with the given flags, replacing this process (so
//!    Ctrl-C and SIGTERM reach the platform directly).
//!
//! It does not start PostgreSQL or change any setting: the platform reads
//! its usual flags and environment.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{Context, Result, bail};

pub fn run(args: &[String]) -> Result<()> {
    let root = crate::workspace_root()?;
    step("building molecule and molecule-agent (release; the first build takes several minutes)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
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
        ])
        .status()
        .context("cannot run `cargo build`")?;
    if !status.success() {
        bail!("`cargo build --release` failed ({status})");
    }

    let provisioner = std::env::var("MOLECULE_PROVISIONER")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let may_use_docker = !matches!(provisioner.as_str(), "local" | "none");
    if may_use_docker && docker_answers() {
        step("a Docker engine answers: building the agent image workspaces run in");
        crate::image::run(&[]).context(
            "cannot build the agent image; fix the error above, or run without Docker \
             (MOLECULE_PROVISIONER=local)",
        )?;
    } else if may_use_docker {
        step("no Docker engine answers: workspaces will run as local molecule-agent processes");
    }

    let molecule = crate::target_dir(&root).join("release").join("molecule");
    step(&format!("starting {} serve", molecule.display()));
    let error = Command::new(&molecule).arg("serve").args(args).exec();
    Err(error).with_context(|| format!("cannot start {}", molecule.display()))
}

fn step(text: &str) {
    println!("==> {text}");
}

fn docker_answers() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}
