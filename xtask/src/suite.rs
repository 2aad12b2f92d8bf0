//! `cargo xtask test`: `cargo fmt --check`, `cargo clippy -D warnings`, the
//! layering check (`layering.rs`) and `tsc` over the canvas's modules, then
//! the whole workspace under nextest, once per database backend (the canvas
//! tests drive Debian's chromium; `.config/nextest.toml` keeps the browsers
//! one at a time). The SQLite pass runs without `MOLECULE_TEST_DATABASE_URL`; the
//! PostgreSQL pass sets it, to the caller's value or to a throwaway server
//! started here and always stopped at the end. A PostgreSQL that cannot be
//! started is a failure, never a skip.

use std::env;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitStatus};

use anyhow::{Context, Result, bail};

use crate::pg;

const DATABASE_URL_VAR: &str = "MOLECULE_TEST_DATABASE_URL";
/// The Python with the official A2A client, for the end-to-end A2A test.
const A2A_PYTHON_VAR: &str = "MOLECULE_A2A_PYTHON";
/// The official A2A client of the protocol line the agent speaks (0.3).
const A2A_SDK: &str = "a2a-sdk==0.3.26";

pub fn run(nextest_args: &[String]) -> Result<()> {
    let root = crate::workspace_root()?;
    ensure_nextest(&root)?;
    prepare_web_tools()?;
    // Style and lints first: a minute here saves a red run later.
    checks(&root)?;

    // Start PostgreSQL before any test runs, so a broken setup fails in
    // seconds rather than after the SQLite pass.
    let mut stop_on_drop = None;
    let pg_url = match env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.is_empty() => {
            println!("using PostgreSQL from {DATABASE_URL_VAR}");
            url
        }
        _ => {
            let instances = crate::instances_dir()?;
            pg::sweep_orphans(&instances)?;
            let instance =
                pg::Instance::at(instances.join(format!("test-{}", std::process::id())))?;
            let guard = stop_on_drop.insert(pg::StopOnDrop(instance));
            let url = guard.0.start().context(
                "cannot start a throwaway PostgreSQL; the PostgreSQL pass is required \
                 (or point MOLECULE_TEST_DATABASE_URL at a server)",
            )?;
            println!("throwaway PostgreSQL at {url}");
            url
        }
    };

    prepare_docker()?;
    let a2a_python = prepare_a2a_client(&root)?;

    // Test servers leave their containers running when they stop (a real
    // platform adopts them on restart); remove what each pass created.
    let before = docker_leftovers();
    let sqlite = nextest_pass(&root, "SQLite", None, &a2a_python, nextest_args)?;
    remove_new_leftovers(&before);
    let postgres = nextest_pass(
        &root,
        "PostgreSQL",
        Some(&pg_url),
        &a2a_python,
        nextest_args,
    )?;
    remove_new_leftovers(&before);
    drop(stop_on_drop);

    println!("\n== summary ==");
    let mut failed = Vec::new();
    for (backend, status) in [("SQLite", sqlite), ("PostgreSQL", postgres)] {
        if status.success() {
            println!("{backend:<12}passed");
        } else {
            println!("{backend:<12}FAILED ({status})");
            failed.push(backend);
        }
    }
    if !failed.is_empty() {
        bail!("tests failed on {}", failed.join(" and "));
    }
    Ok(())
}

/// One `cargo nextest run` over the workspace; `database_url` selects
/// PostgreSQL, `None` the SQLite default.
fn nextest_pass(
    root: &Path,
    backend: &str,
    database_url: Option<&str>,
    a2a_python: &Path,
    args: &[String],
) -> Result<ExitStatus> {
    println!("\n== tests on {backend} ==");
    let mut command = cargo(root);
    command
        .args(["nextest", "run", "--workspace", "--no-fail-fast"])
        .args(args)
        .env(A2A_PYTHON_VAR, a2a_python);
    match database_url {
        Some(url) => command
            .env(DATABASE_URL_VAR, url)
            .env("MOLECULE_TEST_PASS", "postgres"),
        None => command
            .env_remove(DATABASE_URL_VAR)
            .env("MOLECULE_TEST_PASS", "sqlite"),
    };
    command.status().context("cannot run `cargo nextest`")
}

/// `cargo fmt --check` and `cargo clippy -D warnings` over the whole
/// workspace, tests included. The components are added when missing.
fn checks(root: &Path) -> Result<()> {
    println!("\n== checks (rustfmt, clippy) ==");
    for component in ["rustfmt", "clippy"] {
        let sub = if component == "rustfmt" {
            "fmt"
        } else {
            "clippy"
        };
        let present = cargo(root)
            .args([sub, "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !present {
            println!("{component} is missing; adding it with rustup");
            let status = Command::new("rustup")
                .args(["component", "add", component])
                .status()
                .context("cannot run `rustup`")?;
            if !status.success() {
                bail!("`rustup component add {component}` failed ({status})");
            }
        }
    }
    let fmt = cargo(root)
        .args(["fmt", "--all", "--check"])
        .status()
        .context("cannot run `cargo fmt`")?;
    if !fmt.success() {
        bail!("`cargo fmt --all --check` found unformatted code: run `cargo fmt --all`");
    }
    let clippy = cargo(root)
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .status()
        .context("cannot run `cargo clippy`")?;
    if !clippy.success() {
        bail!("`cargo clippy --workspace --all-targets -D warnings` failed ({clippy})");
    }
    println!("rustfmt and clippy: clean");
    crate::layering::check(root)?;
    let web = root.join("crates/molecule-server/web");
    let tsc = Command::new("tsc")
        .arg("-p")
        .arg(&web)
        .status()
        .context("cannot run `tsc`")?;
    if !tsc.success() {
        bail!("`tsc -p {}` found type errors in the canvas", web.display());
    }
    println!("tsc (canvas modules): clean");
    Ok(())
}

/// The canvas: `tsc` type-checks its modules; its tests drive Debian's
/// chromium through chromedriver. What is missing comes from Debian's
/// packages (with a font, so screenshots have text).
fn prepare_web_tools() -> Result<()> {
    let on_path = |bin: &str| {
        env::var_os("PATH")
            .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(bin).is_file()))
    };
    let mut missing: Vec<&str> = [
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
        ("tsc", "node-typescript"),
    ]
    .into_iter()
    .filter(|(bin, _)| !on_path(bin))
    .map(|(_, package)| package)
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if missing.contains(&"chromium") {
        missing.push("fonts-liberation");
    }
    println!("\n== canvas tools ==\ninstalling {}", missing.join(" "));
    crate::apt_install(&missing)
}

fn ensure_nextest(root: &Path) -> Result<()> {
    let probe = cargo(root).args(["nextest", "--version"]).output();
    if probe.is_ok_and(|output| output.status.success()) {
        return Ok(());
    }
    println!("cargo-nextest is missing; installing it with `cargo install cargo-nextest --locked`");
    let status = cargo(root)
        .args(["install", "cargo-nextest", "--locked"])
        .status()
        .context("cannot run `cargo install`")?;
    if !status.success() {
        bail!("`cargo install cargo-nextest --locked` failed ({status})");
    }
    Ok(())
}

/// The cargo that runs xtask (`$CARGO`), in the workspace root.
fn cargo(root: &Path) -> Command {
    let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")));
    command.current_dir(root);
    command
}

/// The Docker tests need the agent image and a static busybox for the
/// provisioner's own test image. Both are made here, from what the project
/// compiles and Debian's packages: no registry is involved. Without an engine
/// the Docker tests say so (and fail when CI=true).
fn prepare_docker() -> Result<()> {
    let engine = Command::new("docker").args(["info"]).output();
    if !engine.is_ok_and(|o| o.status.success()) {
        println!(
            "\n== docker ==\nno Docker engine answers: Docker tests will not run (CI=true makes that a failure)"
        );
        return Ok(());
    }
    // The image build installs busybox-static when it is missing; the
    // provisioner's own test image uses it too.
    println!("\n== agent image ==");
    crate::image::run(&[])
}

/// A virtualenv under the target dir with the official A2A Python client
/// (`A2A_SDK`, from PyPI), made once and reused; answers its `python`.
fn prepare_a2a_client(root: &Path) -> Result<std::path::PathBuf> {
    let venv = crate::target_dir(root).join("a2a-client-venv");
    let python = venv.join("bin").join("python");
    let ready = venv.join(format!(".{A2A_SDK}"));
    if ready.exists() {
        return Ok(python);
    }
    println!("\n== A2A client ({A2A_SDK}, for the end-to-end A2A test) ==");
    let _ = std::fs::remove_dir_all(&venv);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("cannot run `python3 -m venv`")?;
    if !status.success() {
        bail!("`python3 -m venv {}` failed ({status})", venv.display());
    }
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", A2A_SDK])
        .status()
        .context("cannot run pip")?;
    if !status.success() {
        bail!("`pip install {A2A_SDK}` failed ({status}): PyPI must be reachable");
    }
    std::fs::write(&ready, b"")?;
    Ok(python)
}

/// Containers and volumes carrying the `molecule.managed` label.
fn docker_leftovers() -> (Vec<String>, Vec<String>) {
    let list = |args: &[&str]| -> Vec<String> {
        Command::new("docker")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_owned)
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    (
        list(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            "label=molecule.managed",
        ]),
        list(&["volume", "ls", "-q", "--filter", "label=molecule.managed"]),
    )
}

/// Remove the managed containers and volumes that appeared since `before`
/// (the tests' own; anything that existed before the run is left alone).
fn remove_new_leftovers(before: &(Vec<String>, Vec<String>)) {
    let (containers, volumes) = docker_leftovers();
    let new_containers: Vec<&String> = containers
        .iter()
        .filter(|c| !before.0.contains(c))
        .collect();
    let new_volumes: Vec<&String> = volumes.iter().filter(|v| !before.1.contains(v)).collect();
    if !new_containers.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(&new_containers)
            .output();
    }
    if !new_volumes.is_empty() {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f"])
            .args(&new_volumes)
            .output();
    }
    if !new_containers.is_empty() || !new_volumes.is_empty() {
        println!(
            "removed {} container(s) and {} volume(s) the tests left behind",
            new_containers.len(),
            new_volumes.len()
        );
    }
}
