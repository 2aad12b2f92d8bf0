//! The Docker backend against the real engine. Images are built here from
//! scratch plus Debian's static busybox (`apt-get install busybox-static`);
//! nothing is pulled. Without an engine the tests print a note and return,
//! except under `CI=true`, where that is a failure. Every test uses its own
//! workspace id and removes its container and volumes, even on panic.

use crate::support::{eventually, http_get, in_ci, spec, wait_for_observation};
use molecule_provisioner::docker::{DockerOptions, DockerProvisioner, configs_volume};
use molecule_provisioner::{Observation, ProvisionError, Provisioner};
use molecule_types::container_name;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;
use uuid::Uuid;

pub(crate) const IMAGE: &str = "molecule-test/busybox:latest";
const EXIT3_IMAGE: &str = "molecule-test/busybox-exit3:latest";
pub(crate) const NETWORK: &str = "molecule-test-net";
const BUSYBOX: &str = "/bin/busybox";

/// Run the docker CLI: (success, trimmed stdout).
pub(crate) fn cli(args: &[&str]) -> (bool, String) {
    match Command::new("docker").args(args).output() {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ),
        Err(_) => (false, String::new()),
    }
}

fn build_image(tag: &str, dockerfile: &str, with_busybox: bool) -> Result<(), String> {
    if cli(&["image", "inspect", tag]).0 {
        return Ok(());
    }
    let dir = crate::support::TempDir::new();
    if with_busybox {
        std::fs::copy(BUSYBOX, dir.0.join("busybox")).map_err(|e| {
            format!("{BUSYBOX} is needed to build {tag} (apt-get install busybox-static): {e}")
        })?;
    }
    std::fs::write(dir.0.join("Dockerfile"), dockerfile).map_err(|e| e.to_string())?;
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(&dir.0)
        // The classic builder needs no buildx plugin and no registry.
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .map_err(|e| format!("docker build {tag}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker build {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Build the test images once per test binary, and one process at a time
/// (nextest runs every test in its own process).
fn test_images() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let lock_path = std::env::temp_dir().join("molecule-provisioner-test-image.lock");
            let lock = std::fs::File::create(&lock_path)
                .map_err(|e| format!("{}: {e}", lock_path.display()))?;
            lock.lock()
                .map_err(|e| format!("{}: {e}", lock_path.display()))?;
            build_image(
                IMAGE,
                "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n\
                 CMD [\"httpd\",\"-f\",\"-p\",\"8000\",\"-h\",\"/configs\"]\n",
                true,
            )?;
            build_image(
                EXIT3_IMAGE,
                &format!(
                    "FROM {IMAGE}\nCMD [\"sh\",\"-c\",\"echo boom; echo oops >&2; exit 3\"]\n"
                ),
                false,
            )
        })
        .clone()
}

/// The provisioner, or None (with a note) when Docker is not usable here.
pub(crate) async fn docker() -> Option<DockerProvisioner> {
    let opts = DockerOptions {
        network: NETWORK.into(),
        stop_grace: Duration::from_secs(1),
        ..Default::default()
    };
    let p = match DockerProvisioner::connect(opts).await {
        Ok(p) => p,
        Err(e) if in_ci() => panic!("CI=true but the Docker engine is unreachable: {e}"),
        Err(e) => {
            eprintln!("note: Docker engine unreachable, docker test not run: {e}");
            return None;
        }
    };
    match tokio::task::spawn_blocking(test_images).await {
        Ok(Ok(())) => Some(p),
        Ok(Err(e)) if !in_ci() => {
            eprintln!("note: test image unavailable, docker test not run: {e}");
            None
        }
        Ok(Err(e)) => panic!("cannot build the test image: {e}"),
        Err(e) => panic!("image build task failed: {e}"),
    }
}

/// Removes the workspace's container and volumes when dropped.
pub(crate) struct Cleanup(pub(crate) Uuid);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let name = container_name(self.0);
        cli(&["rm", "-f", &name]);
        let sessions = format!("{name}-claude-sessions");
        cli(&["volume", "rm", "-f", &configs_volume(self.0), &sessions]);
    }
}

fn inspect_format(object: &str, format: &str) -> String {
    let (ok, out) = cli(&["inspect", "-f", format, object]);
    assert!(ok, "docker inspect {object} failed");
    out
}

#[tokio::test]
async fn docker_workspace_lifecycle() {
    let Some(p) = docker().await else { return };
    let mut s = spec(
        IMAGE,
        2,
        &[
            ("hello.txt", "hello from configs\n"),
            ("sub/dir/nested.txt", "nested\n"),
        ],
    );
    // claude-code also gets its sessions volume.
    s.runtime = "claude-code".into();
    let id = s.workspace_id;
    let _cleanup = Cleanup(id);
    let name = container_name(id);
    let sessions = format!("{name}-claude-sessions");

    let started = p.ensure(&s).await.expect("ensure");
    assert!(!started.adopted);
    assert!(
        started.url.starts_with("http://127.0.0.1:"),
        "{}",
        started.url
    );
    assert_eq!(started.internal_url, Some(format!("http://{name}:8000")));
    assert_eq!(p.inspect(id).await, Observation::Running);

    // httpd serves /configs, so the uploaded files prove the tar upload.
    let url = started.url.clone();
    let (status, body) = eventually("httpd answers", Duration::from_secs(20), || {
        http_get(&url, "/hello.txt")
    })
    .await;
    assert_eq!((status, body.as_str()), (200, "hello from configs\n"));
    let (status, body) = http_get(&url, "/sub/dir/nested.txt").await.expect("nested");
    assert_eq!((status, body.as_str()), (200, "nested\n"));

    let facts = inspect_format(
        &name,
        "{{index .Config.Labels \"molecule.workspace_id\"}} {{index .Config.Labels \"molecule.managed\"}} \
         {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.Config.Hostname}}",
    );
    assert_eq!(facts, format!("{id} true no 536870912 1000000000 {name}"));
    let aliases = inspect_format(
        &name,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{join $v.Aliases \",\"}}{{end}}",
    );
    assert!(aliases.starts_with(&format!("{NETWORK}=")), "{aliases}");
    assert!(aliases.contains(&name), "{aliases}");
    let (ok, volume_labels) = cli(&[
        "volume",
        "inspect",
        "-f",
        "{{index .Labels \"molecule.workspace_id\"}} {{index .Labels \"molecule.managed\"}}",
        &configs_volume(id),
    ]);
    assert!(ok, "configs volume missing");
    assert_eq!(volume_labels, format!("{id} true"));
    assert!(
        cli(&["volume", "inspect", &sessions]).0,
        "sessions volume missing"
    );
    let (_, gateway) = cli(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        NETWORK,
    ]);
    assert_eq!(
        p.platform_listen_ip().map(|ip| ip.to_string()),
        Some(gateway)
    );

    let cmd = [
        "/bin/busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; echo persisted > /configs/marker.txt; exit 4",
    ]
    .map(String::from);
    let out = p
        .exec(id, &cmd, Duration::from_secs(10))
        .await
        .expect("exec");
    assert_eq!(out.exit_code, Some(4));
    assert!(
        out.output.contains("out") && out.output.contains("err"),
        "{out:?}"
    );

    let listed = p.list().await.expect("list");
    assert!(listed.contains(&(id, Observation::Running)), "{listed:?}");

    let again = p.ensure(&s).await.expect("ensure again");
    assert!(again.adopted);
    assert_eq!(again.url, started.url);

    // The next start (another generation) never adopts the running
    // container of the last one: it replaces it.
    let container = inspect_format(&name, "{{.Id}}");
    s.generation = "2".into();
    let next = p.ensure(&s).await.expect("ensure, next generation");
    assert!(!next.adopted);
    assert_ne!(inspect_format(&name, "{{.Id}}"), container);
    assert_eq!(
        inspect_format(&name, "{{index .Config.Labels \"molecule.generation\"}}"),
        "2"
    );

    assert!(cli(&["kill", &name]).0, "docker kill");
    wait_for_observation(&p, id, Observation::Exited { code: Some(137) }).await;
    let listed = p.list().await.expect("list");
    assert!(
        listed.contains(&(id, Observation::Exited { code: Some(137) })),
        "{listed:?}"
    );

    // An exited container is replaced; the config volume survives.
    let restarted = p.ensure(&s).await.expect("ensure after kill");
    assert!(!restarted.adopted);
    assert_eq!(p.inspect(id).await, Observation::Running);
    let url = restarted.url.clone();
    let (status, body) = eventually("restarted httpd answers", Duration::from_secs(20), || {
        http_get(&url, "/marker.txt")
    })
    .await;
    assert_eq!((status, body.as_str()), (200, "persisted\n"));

    p.remove(id, true).await.expect("remove");
    assert_eq!(p.inspect(id).await, Observation::NotFound);
    assert!(
        !cli(&["volume", "inspect", &configs_volume(id)]).0,
        "volume kept"
    );
    p.remove(id, true).await.expect("remove is idempotent");
}

#[tokio::test]
async fn docker_tier1_has_a_read_only_rootfs_and_still_gets_its_configs() {
    let Some(p) = docker().await else { return };
    let s = spec(IMAGE, 1, &[("config.yaml", "name: t1\n")]);
    let id = s.workspace_id;
    let _cleanup = Cleanup(id);
    let started = p.ensure(&s).await.expect("ensure");
    let url = started.url.clone();
    let (status, body) = eventually("httpd answers", Duration::from_secs(20), || {
        http_get(&url, "/config.yaml")
    })
    .await;
    assert_eq!((status, body.as_str()), (200, "name: t1\n"));
    let facts = inspect_format(
        &container_name(id),
        "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Memory}}",
    );
    assert_eq!(facts, "true 0");
    let sh = |script: &str| ["/bin/busybox", "sh", "-c", script].map(String::from);
    let t = Duration::from_secs(10);
    let rootfs = p
        .exec(id, &sh("echo x > /rootfs-file"), t)
        .await
        .expect("exec");
    assert_ne!(rootfs.exit_code, Some(0), "rootfs is writable: {rootfs:?}");
    let tmp = p
        .exec(id, &sh("echo x > /tmp/file"), t)
        .await
        .expect("exec");
    assert_eq!(tmp.exit_code, Some(0), "{tmp:?}");
    p.remove(id, true).await.expect("remove");
}

#[tokio::test]
async fn docker_missing_image_is_reported_and_never_pulled() {
    let Some(p) = docker().await else { return };
    let image = "molecule-test/absent:never";
    let s = spec(image, 2, &[]);
    let id = s.workspace_id;
    let _cleanup = Cleanup(id);
    match p.ensure(&s).await {
        Err(ProvisionError::ImageMissing {
            image: missing,
            build_command,
        }) => {
            assert_eq!(missing, image);
            assert_eq!(build_command, "cargo xtask image");
        }
        other => panic!("expected ImageMissing, got {other:?}"),
    }
    assert!(!cli(&["image", "inspect", image]).0, "image appeared");
    assert_eq!(p.inspect(id).await, Observation::NotFound);
    assert!(!cli(&["volume", "inspect", &configs_volume(id)]).0);
}

#[tokio::test]
async fn docker_crash_at_start_is_observed_as_exited() {
    let Some(p) = docker().await else { return };
    let s = spec(EXIT3_IMAGE, 2, &[]);
    let id = s.workspace_id;
    let _cleanup = Cleanup(id);
    // The exit may come before or after the port is read back.
    match p.ensure(&s).await {
        Ok(_) => {}
        Err(ProvisionError::Failed(m)) if m.contains("stopped right after start") => {}
        Err(e) => panic!("unexpected ensure error: {e:?}"),
    }
    wait_for_observation(&p, id, Observation::Exited { code: Some(3) }).await;
    let logs = p.logs(id, 10).await.expect("logs");
    assert!(logs.contains("boom") && logs.contains("oops"), "{logs:?}");
    let listed = p.list().await.expect("list");
    assert!(
        listed.contains(&(id, Observation::Exited { code: Some(3) })),
        "{listed:?}"
    );
    p.remove(id, true).await.expect("remove");
    assert_eq!(p.inspect(id).await, Observation::NotFound);
}

#[tokio::test]
async fn docker_stop_leaves_an_exited_container() {
    let Some(p) = docker().await else { return };
    let s = spec(IMAGE, 2, &[]);
    let id = s.workspace_id;
    let _cleanup = Cleanup(id);
    p.ensure(&s).await.expect("ensure");
    p.stop(id).await.expect("stop");
    let obs = p.inspect(id).await;
    assert!(matches!(obs, Observation::Exited { .. }), "{obs:?}");
    p.stop(id).await.expect("stopping a stopped workspace");
    assert!(
        cli(&["volume", "inspect", &configs_volume(id)]).0,
        "stop removed the volume"
    );
    p.remove(id, true).await.expect("remove");
}

#[tokio::test]
async fn docker_unknown_workspace_is_not_found() {
    let Some(p) = docker().await else { return };
    let id = Uuid::new_v4();
    assert_eq!(p.inspect(id).await, Observation::NotFound);
    p.stop(id).await.expect("stop of nothing");
    p.remove(id, true).await.expect("remove of nothing");
    assert!(matches!(p.logs(id, 5).await, Err(ProvisionError::NotFound)));
    let cmd = ["true".to_string()];
    let exec = p.exec(id, &cmd, Duration::from_secs(5)).await;
    assert!(matches!(exec, Err(ProvisionError::NotFound)), "{exec:?}");
    assert!(!p.list().await.expect("list").iter().any(|(i, _)| *i == id));
}

/// Ids of the networks named exactly `name`.
fn networks_named(name: &str) -> Vec<String> {
    let (_, out) = cli(&[
        "network",
        "ls",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Name}} {{.ID}}",
    ]);
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(n, _)| *n == name)
        .map(|(_, id)| id.to_string())
        .collect()
}

#[tokio::test]
async fn docker_duplicate_networks_are_settled_on_connect() {
    // Only meaningful where Docker is usable; docker() reports otherwise.
    if docker().await.is_none() {
        return;
    }
    let name = format!("molecule-dup-{}", Uuid::new_v4().simple());
    let engine = bollard::Docker::connect_with_unix_defaults()
        .expect("socket")
        .negotiate_version()
        .await
        .expect("version");
    for _ in 0..2 {
        let request = bollard::models::NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            ..Default::default()
        };
        // Engines from API 1.44 on refuse the second one themselves.
        let _ = engine.create_network(request).await;
    }
    let opts = DockerOptions {
        network: name.clone(),
        ..Default::default()
    };
    let connected = DockerProvisioner::connect(opts).await;
    let left = networks_named(&name);
    for id in &left {
        cli(&["network", "rm", id]);
    }
    let p = connected.expect("connect with duplicate networks");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(p.platform_listen_ip().is_some_and(|ip| ip.is_ipv4()));
}
