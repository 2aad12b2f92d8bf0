//! `cargo xtask image`: builds the `molecule/agent` container image, a
//! `FROM scratch` image holding a static `molecule-agent` and Debian's static
//! busybox (`/bin/busybox` and its applet links in `/bin`), so a terminal in
//! a workspace has a shell and the usual tools.
//!
//! Steps: build the agent with glibc's static runtime
//! (`-C target-feature=+crt-static`, explicit `--target` so proc-macros and
//! build scripts stay dynamic) in the size-optimised `agent` profile, with
//! the `tls` feature unless `--no-tls`; check the result really is static
//! (a dynamic one fails in scratch with a baffling "no such file"); write a
//! temporary build context (binary, busybox, Dockerfile, an empty
//! `configs/`); run
//! `docker build` tagged `molecule/agent:<workspace version>` and `:latest`.
//! Nothing is pulled: scratch needs no base image.
//!
//! It does not push, and does not run or test the image.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const IMAGE: &str = "molecule/agent";
const PROFILE: &str = "agent";

/// Debian's static busybox (package `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// The image recipe: busybox and its applet links (run by busybox itself:
/// scratch has no shell), the binary, an empty `/configs` (so the agent can
/// persist its token without a volume; a named volume mounted there starts
/// as a copy of it), the A2A port, the entrypoint.
fn dockerfile(version: &str) -> String {
    format!(
        "FROM scratch\n\
         COPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         COPY molecule-agent /molecule-agent\n\
         COPY configs /configs\n\
         LABEL org.opencontainers.image.title=\"molecule-agent\" org.opencontainers.image.version=\"{version}\"\n\
         EXPOSE 8000\n\
         ENTRYPOINT [\"/molecule-agent\"]\n"
    )
}

pub fn run(args: &[String]) -> Result<()> {
    let mut tls = true;
    for arg in args {
        match arg.as_str() {
            "--no-tls" => tls = false,
            other => bail!("unknown option `{other}` for `cargo xtask image` (known: --no-tls)"),
        }
    }
    let root = crate::workspace_root()?;
    let version = workspace_version(&root)?;
    let target = host_triple()?;

    step("checking the Docker engine");
    let engine =
        output(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]))
            .context(
                "the Docker engine is not reachable (is dockerd running, DOCKER_HOST right?)",
            )?;
    println!("    Docker engine {}", engine.trim());

    step(&format!(
        "building a static molecule-agent {version} for {target} (profile `{PROFILE}`, TLS {})",
        if tls { "on" } else { "off" }
    ));
    let binary = build_static_agent(&root, &target, tls)?;
    check_static(&binary)?;
    let size = std::fs::metadata(&binary)?.len();
    println!("    {} ({})", binary.display(), human(size));

    ensure_busybox()?;
    let context = BuildContext::create(&binary, &version)?;
    let versioned = format!("{IMAGE}:{version}");
    let latest = format!("{IMAGE}:latest");
    step(&format!("docker build -t {versioned} -t {latest}"));
    let status = Command::new("docker")
        .args(["build", "-t", &versioned, "-t", &latest])
        .arg(context.dir())
        .status()
        .context("cannot run `docker build`")?;
    if !status.success() {
        bail!("`docker build` failed ({status})");
    }
    let image_size =
        output(Command::new("docker").args(["image", "inspect", "--format", "{{.Size}}", &latest]))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
    step(&format!(
        "built {versioned} and {latest}{}",
        image_size
            .map(|s| format!(" ({})", human(s)))
            .unwrap_or_default()
    ));
    println!("    try: docker run --rm -p 127.0.0.1:8000:8000 {latest}");
    Ok(())
}

/// `/bin/busybox`, installed from Debian's `busybox-static` when missing
/// (as root; otherwise the error says what to install).
pub fn ensure_busybox() -> Result<()> {
    if Path::new(BUSYBOX).exists() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !is_root {
        bail!(
            "{BUSYBOX} is missing: install Debian's busybox-static package (apt-get install busybox-static)"
        );
    }
    step("installing busybox-static");
    crate::apt_install(&["busybox-static"])
}

fn step(text: &str) {
    println!("==> {text}");
}

/// `[workspace.package] version` from the root Cargo.toml.
fn workspace_version(root: &Path) -> Result<String> {
    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).context("cannot read Cargo.toml")?;
    let mut in_section = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section && let Some(value) = line.strip_prefix("version") {
            let value = value
                .trim_start()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"');
            if !value.is_empty() {
                return Ok(value.to_owned());
            }
        }
    }
    bail!("no version in [workspace.package] of Cargo.toml")
}

/// The host's target triple (`rustc -vV`): the explicit `--target` that
/// keeps `+crt-static` away from proc-macros.
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let info = output(Command::new(rustc).arg("-vV"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` printed no host triple")
}

fn build_static_agent(root: &Path, target: &str, tls: bool) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if !rustflags.contains("crt-static") {
        rustflags = format!("{rustflags} -C target-feature=+crt-static")
            .trim()
            .to_owned();
    }
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .env("RUSTFLAGS", &rustflags)
        .args([
            "build",
            "--profile",
            PROFILE,
            "--target",
            target,
            "-p",
            "molecule-agent",
        ]);
    if tls {
        command.args(["--features", "tls"]);
    }
    let status = command.status().context("cannot run `cargo build`")?;
    if !status.success() {
        bail!("building molecule-agent failed ({status})");
    }
    let binary = crate::target_dir(root)
        .join(target)
        .join(PROFILE)
        .join("molecule-agent");
    if !binary.is_file() {
        bail!("the build succeeded but {} is missing", binary.display());
    }
    Ok(binary)
}

/// Fails unless `binary` is a 64-bit little-endian ELF with no program
/// interpreter (`PT_INTERP`), i.e. runs without a dynamic loader.
fn check_static(binary: &Path) -> Result<()> {
    let elf = std::fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        bail!(
            "{} is not a 64-bit little-endian ELF file",
            binary.display()
        );
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        bail!("{} has a truncated ELF header", binary.display());
    };
    const PT_INTERP: u32 = 3;
    for i in 0..usize::from(phnum) {
        let at = usize::try_from(phoff)? + i * usize::from(phentsize);
        if u32_at(at) == Some(PT_INTERP) {
            bail!(
                "{} is dynamically linked (it has a program interpreter); a FROM-scratch image cannot run it",
                binary.display()
            );
        }
    }
    println!("    statically linked: no program interpreter");
    Ok(())
}

/// A temporary `docker build` context, removed on drop.
struct BuildContext(PathBuf);

impl BuildContext {
    fn create(binary: &Path, version: &str) -> Result<BuildContext> {
        let dir = std::env::temp_dir().join(format!("molecule-agent-image-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(dir.join("configs"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let context = BuildContext(dir);
        std::fs::copy(binary, context.0.join("molecule-agent"))
            .context("cannot copy the binary")?;
        std::fs::copy(BUSYBOX, context.0.join("busybox"))
            .with_context(|| format!("cannot copy {BUSYBOX}"))?;
        std::fs::write(context.0.join("Dockerfile"), dockerfile(version))
            .context("cannot write the Dockerfile")?;
        println!("    build context {}", context.0.display());
        Ok(context)
    }

    fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for BuildContext {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command and returns its stdout, failing on a non-zero exit.
fn output(command: &mut Command) -> Result<String> {
    let out = command
        .output()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            command.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn human(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_version_is_read_from_the_manifest() {
        let root = crate::workspace_root().expect("run under cargo");
        let version = workspace_version(&root).expect("version present");
        assert!(version.split('.').count() >= 3, "{version}");
    }

    #[test]
    fn a_dynamic_binary_is_refused() {
        // The test binary itself is dynamically linked.
        let me = std::env::current_exe().expect("current exe");
        let error = check_static(&me).expect_err("dynamic");
        assert!(error.to_string().contains("dynamically linked"), "{error}");
        let not_elf = std::env::temp_dir().join(format!("not-elf-{}", std::process::id()));
        std::fs::write(&not_elf, b"#!/bin/sh\n").expect("write");
        assert!(check_static(&not_elf).is_err());
        let _ = std::fs::remove_file(not_elf);
    }
}
