//! `cargo xtask`: the project's developer and CI commands, in Rust so they run
//! the same everywhere.
//!
//! - `cargo xtask serve [flags…]`: the run command. Builds `molecule`, the
//!   agent and (with Docker) the agent image, then runs `molecule serve`.
//! - `cargo xtask test [nextest args…]`: the test command. Runs the whole
//!   workspace under nextest twice, on SQLite and on a throwaway PostgreSQL.
//! - `cargo xtask bench heartbeat`: the heartbeat benchmark, with a throwaway
//!   PostgreSQL.
//! - `cargo xtask image [--no-tls]`: builds the `molecule/agent` image
//!   (FROM scratch + a static `molecule-agent`).
//! - `cargo xtask pg start|stop|env`: the same throwaway PostgreSQL, kept
//!   running for a developer's own `cargo nextest` runs.
//!
//! It deliberately knows nothing about the crates it tests: no project code is
//! linked in, so it builds in seconds even when the workspace does not.

mod bench;
mod image;
mod layering;
mod pg;
mod serve;
mod suite;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage:
  cargo xtask serve [serve flags...]    build what a first run needs, then run `molecule serve`
  cargo xtask test [nextest args...]   run all tests on SQLite, then on PostgreSQL
  cargo xtask bench heartbeat          heartbeat throughput on SQLite and PostgreSQL
  cargo xtask bench org-import         an org of 50 via POST /org/import vs 50 `docker run`
  cargo xtask bench provisioning       20 workspaces vs 20 `docker run`; kill → recovery
  cargo xtask bench proxy              A2A proxy vs direct vs nginx, concurrency 1 and 64
  cargo xtask image [--no-tls]         build the molecule/agent image (static agent, FROM scratch)
  cargo xtask pg start                 start a developer PostgreSQL, print its URL
  cargo xtask pg env                   print `export MOLECULE_TEST_DATABASE_URL=...`
  cargo xtask pg stop                  stop it and delete its data

The test command starts its own PostgreSQL unless MOLECULE_TEST_DATABASE_URL
is set; PostgreSQL binaries come from PATH or /usr/lib/postgresql/*/bin.";

fn main() -> ExitCode {
    match dispatch() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the context chain on one line; no backtrace, since
            // these are user-facing failures, not bugs.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1)) {
        (Some("serve"), _) => serve::run(&args[1..]),
        (Some("test"), _) => suite::run(&args[1..]),
        (Some("image"), _) => image::run(&args[1..]),
        (Some("bench"), name) => bench::run(name),
        (Some("pg"), Some("start")) => pg_start(),
        (Some("pg"), Some("env")) => pg_env(),
        (Some("pg"), Some("stop")) => pg_stop(),
        (None | Some("help" | "-h" | "--help"), _) => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown command `{}`\n\n{USAGE}", args.join(" ")),
    }
}

/// The instance a developer starts by hand; test runs never touch it.
fn dev_instance() -> Result<pg::Instance> {
    pg::Instance::at(instances_dir()?.join("dev"))
}

fn pg_start() -> Result<()> {
    let instance = dev_instance()?;
    let url = match instance.running_url()? {
        Some(url) => {
            println!(
                "PostgreSQL is already running in {}",
                instance.dir().display()
            );
            url
        }
        None => {
            let url = instance.start()?;
            println!("PostgreSQL started in {}", instance.dir().display());
            url
        }
    };
    println!("{url}");
    println!(
        "use it with: export MOLECULE_TEST_DATABASE_URL={url}   (or: eval \"$(cargo xtask pg env)\")"
    );
    println!("stop it with: cargo xtask pg stop");
    Ok(())
}

fn pg_env() -> Result<()> {
    match dev_instance()?.running_url()? {
        Some(url) => {
            println!("export MOLECULE_TEST_DATABASE_URL={url}");
            Ok(())
        }
        None => bail!("no developer PostgreSQL is running; start one with `cargo xtask pg start`"),
    }
}

fn pg_stop() -> Result<()> {
    let instance = dev_instance()?;
    if instance.stop()? {
        println!(
            "PostgreSQL in {} stopped and deleted",
            instance.dir().display()
        );
    } else {
        println!("no developer PostgreSQL was running");
    }
    Ok(())
}

/// The workspace root, from the manifest dir cargo sets when running xtask
/// (read at run time: a build reused from another checkout must not point
/// at that checkout).
/// `apt-get update` then `apt-get install <packages>` (non-interactive): how
/// the commands get what the machine lacks (busybox-static, nginx, wrk,
/// chromium).
fn apt_install(packages: &[&str]) -> Result<()> {
    let package = packages.join(" ");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !apt(&["update", "-q"]) {
        bail!("`apt-get update` failed; install {package} by hand and run again");
    }
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(packages);
    if !apt(&install) {
        bail!("`apt-get install {package}` failed; install it by hand and run again");
    }
    Ok(())
}

fn workspace_root() -> Result<PathBuf> {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").context("run this through `cargo xtask`")?;
    let root = PathBuf::from(manifest_dir).parent().map(PathBuf::from);
    root.context("xtask's manifest dir has no parent")
}

/// The cargo target dir: `CARGO_TARGET_DIR` (relative paths taken from
/// `root`, as cargo does when run there) or `<root>/target`.
fn target_dir(root: &std::path::Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(PathBuf::from(dir)),
        None => root.join("target"),
    }
}

/// `<target dir>/xtask-pg`, honouring `CARGO_TARGET_DIR`, created readable
/// by the `postgres` user.
fn instances_dir() -> Result<PathBuf> {
    let dir = target_dir(&workspace_root()?).join("xtask-pg");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The instances below are owned by `postgres`, which must be able to
    // reach them whatever the umask was.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}
