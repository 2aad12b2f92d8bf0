//! A throwaway PostgreSQL for the test suite and for developers: `initdb` and
//! `pg_ctl` on a data dir under `<target>/xtask-pg/`, listening on a free
//! loopback port with trust auth and durability off.
//!
//! PostgreSQL refuses to run as root, so as root every command runs as the
//! `postgres` system user (created when missing) and the instance dir is
//! handed to it. This module never touches an instance it did not create:
//! each one has its own dir, socket and port.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// How many free ports to try before giving up (a port found free can be
/// taken by someone else before the server binds it).
const START_ATTEMPTS: u32 = 3;

/// One PostgreSQL instance: its dir holds `data/`, `server.log` and the
/// unix socket.
pub struct Instance {
    dir: PathBuf,
    initdb: PathBuf,
    pg_ctl: PathBuf,
    /// True when running as root: commands go through `runuser -u postgres`.
    as_postgres: bool,
}

impl Instance {
    /// The instance living in `dir` (which may not exist yet).
    pub fn at(dir: PathBuf) -> Result<Instance> {
        Ok(Instance {
            dir,
            initdb: pg_binary("initdb")?,
            pg_ctl: pg_binary("pg_ctl")?,
            as_postgres: is_root()?,
        })
    }

    /// Creates a fresh cluster (wiping whatever was in the dir) and starts it.
    /// Returns the connection URL.
    pub fn start(&self) -> Result<String> {
        self.stop()?;
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        if self.as_postgres {
            ensure_postgres_user()?;
            run(
                Command::new("chown").arg("postgres:").arg(&self.dir),
                "chown of the instance dir",
            )?;
        }
        let mut initdb = self.command(&self.initdb);
        initdb.arg("-D").arg(self.data_dir()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(initdb.arg("--no-sync"), "initdb")?;

        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k '{}' -c fsync=off -c synchronous_commit=off \
                 -c max_connections=300",
                self.dir.display()
            );
            let mut pg_ctl = self.command(&self.pg_ctl);
            pg_ctl
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_file());
            pg_ctl.args(["-w", "-t", "30", "-o", &options, "start"]);
            match run(&mut pg_ctl, "pg_ctl start") {
                Ok(()) => return Ok(url(port)),
                Err(e) => last_error = Some(e),
            }
        }
        let log = fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        let last_error = last_error.map(|e| format!("{e:#}")).unwrap_or_default();
        bail!(
            "PostgreSQL did not start in {} after {START_ATTEMPTS} attempts; the last one said: {last_error}\n\
             last lines of {}:\n{tail}",
            self.dir.display(),
            self.log_file().display(),
        )
    }

    /// The connection URL when the server is up.
    pub fn running_url(&self) -> Result<Option<String>> {
        if !self.data_dir().join("postmaster.pid").exists() {
            return Ok(None);
        }
        let status = self
            .command(&self.pg_ctl)
            .arg("-D")
            .arg(self.data_dir())
            .arg("status")
            .output();
        if !status.context("cannot run pg_ctl status")?.status.success() {
            return Ok(None);
        }
        // Line 4 of postmaster.pid is the port the server listens on.
        let pid_file = fs::read_to_string(self.data_dir().join("postmaster.pid"))?;
        match pid_file
            .lines()
            .nth(3)
            .and_then(|l| l.trim().parse::<u16>().ok())
        {
            Some(port) => Ok(Some(url(port))),
            None => bail!("no port in {}/postmaster.pid", self.data_dir().display()),
        }
    }

    /// Stops the server if it runs and deletes the instance dir. Returns
    /// whether there was anything to remove.
    pub fn stop(&self) -> Result<bool> {
        if !self.dir.exists() {
            return Ok(false);
        }
        if self.running_url()?.is_some() {
            let mut pg_ctl = self.command(&self.pg_ctl);
            pg_ctl
                .arg("-D")
                .arg(self.data_dir())
                .args(["-w", "-t", "30", "stop", "-m", "fast"]);
            run(&mut pg_ctl, "pg_ctl stop")?;
        }
        fs::remove_dir_all(&self.dir)
            .with_context(|| format!("cannot remove {}", self.dir.display()))?;
        Ok(true)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// A command running `program` as the user owning the instance.
    fn command(&self, program: &Path) -> Command {
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // The postgres user may not be able to read the caller's cwd.
        command.current_dir(if self.dir.exists() {
            &self.dir
        } else {
            Path::new("/")
        });
        command
    }
}

/// Stops and deletes the instance when dropped, so a failing or erroring test
/// run still cleans up.
pub struct StopOnDrop(pub Instance);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        match self.0.stop() {
            Ok(true) => println!(
                "cleaned up the throwaway PostgreSQL in {}",
                self.0.dir().display()
            ),
            Ok(false) => {}
            Err(e) => eprintln!(
                "warning: could not stop PostgreSQL in {}: {e:#}",
                self.0.dir().display()
            ),
        }
    }
}

/// Removes `test-<pid>` instances whose xtask process is gone (killed runs,
/// Ctrl-C): a persistent CI machine must not collect orphan servers.
pub fn sweep_orphans(root: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(root) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some(pid) = name.strip_prefix("test-") else {
            continue;
        };
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "xtask" {
            continue;
        }
        println!(
            "removing the orphaned PostgreSQL instance {}",
            path.display()
        );
        Instance::at(path)?.stop()?;
    }
    Ok(())
}

fn url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Finds a PostgreSQL program on PATH, else in the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn pg_binary(name: &str) -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            Some((
                e.file_name().to_str()?.parse().ok()?,
                e.path().join("bin").join(name),
            ))
        })
        .collect();
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    on_path
        .into_iter()
        .chain(versioned.into_iter().map(|(_, path)| path))
        .find(|path| path.is_file())
        .with_context(|| {
            format!("PostgreSQL's `{name}` is neither on PATH nor in /usr/lib/postgresql/*/bin; install PostgreSQL")
        })
}

fn is_root() -> Result<bool> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .context("cannot run `id -u`")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn ensure_postgres_user() -> Result<()> {
    let exists = Command::new("id")
        .arg("-u")
        .arg("postgres")
        .output()
        .context("cannot run `id`")?;
    if exists.status.success() {
        return Ok(());
    }
    println!("creating the system user `postgres` (PostgreSQL refuses to run as root)");
    let mut useradd = Command::new("useradd");
    useradd.args([
        "--system",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "postgres",
    ]);
    run(&mut useradd, "useradd postgres")
}

/// Runs a command to completion, turning a failure into an error that carries
/// its output (which is otherwise kept quiet).
fn run(command: &mut Command, what: &str) -> Result<()> {
    let Output {
        status,
        stdout,
        stderr,
    } = command
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!(
            "{what} failed ({status}):\n{}{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    }
    Ok(())
}
