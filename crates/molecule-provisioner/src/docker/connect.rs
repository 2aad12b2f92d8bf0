//! Reaching the Docker engine: the endpoint (from `DOCKER_HOST` like every
//! Docker client, default the local unix socket), API version negotiation,
//! the daemon's CPU count, and the Molecule bridge network whose gateway the
//! platform listens on. It only sets the provisioner up; containers are
//! handled in `docker/mod.rs`.

use super::DockerOptions;
use super::container_spec::labels_managed;
use super::observe::CallError;
use crate::ProvisionError;
use bollard::models::{NetworkCreateRequest, NetworkInspect};
use bollard::query_parameters::ListNetworksOptionsBuilder;
use bollard::{API_DEFAULT_VERSION, Docker};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

/// The default engine endpoint.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Where the engine is, parsed from a `DOCKER_HOST`-style string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Unix(String),
    Tcp(String),
}

impl Endpoint {
    /// `None`/empty → the default socket; `unix://path` or an absolute path
    /// → that socket; `tcp://` / `http://` → plain TCP. TLS and SSH
    /// endpoints are not supported.
    pub(crate) fn parse(host: Option<&str>) -> Result<Self, String> {
        let host = host.map(str::trim).unwrap_or_default();
        if host.is_empty() {
            return Ok(Self::Unix(DEFAULT_DOCKER_SOCKET.into()));
        }
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(Self::Unix(path.into()));
        }
        if host.starts_with('/') {
            return Ok(Self::Unix(host.into()));
        }
        if host.starts_with("tcp://") || host.starts_with("http://") {
            return Ok(Self::Tcp(host.into()));
        }
        Err(format!(
            "unsupported docker endpoint {host:?}: use unix:// or tcp://"
        ))
    }
}

/// Run one Docker call under its own deadline.
pub(crate) async fn call_with<T>(
    timeout: Duration,
    call: &'static str,
    fut: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CallError::Docker(e)),
        Err(_) => Err(CallError::TimedOut {
            call,
            after: timeout,
        }),
    }
}

/// What connecting learned about the engine.
pub(crate) struct Engine {
    pub docker: Docker,
    pub gateway: Option<IpAddr>,
    pub host_cpus: Option<i64>,
}

/// Build the client, negotiate the API version, read the CPU count and make
/// sure the network exists. Any failure is `Unavailable`, so the server can
/// fall back to the local backend.
pub(crate) async fn connect(opts: &DockerOptions) -> Result<Engine, ProvisionError> {
    let unavailable = |what: &str, e: String| ProvisionError::Unavailable(format!("{what}: {e}"));
    let configured = opts
        .host
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok());
    let endpoint = Endpoint::parse(configured.as_deref()).map_err(ProvisionError::Unavailable)?;
    // bollard's own deadline only covers response headers; ours (below)
    // covers whole calls. Keep bollard's no shorter than ours.
    let secs = (opts.call_timeout.as_secs_f64().ceil() as u64).max(1);
    let client = match &endpoint {
        Endpoint::Unix(path) => Docker::connect_with_unix(path, secs, API_DEFAULT_VERSION),
        Endpoint::Tcp(addr) => Docker::connect_with_http(addr, secs, API_DEFAULT_VERSION),
    }
    .map_err(|e| unavailable(&format!("docker endpoint {endpoint:?}"), e.to_string()))?;
    let docker = call_with(
        opts.call_timeout,
        "negotiate_version",
        client.negotiate_version(),
    )
    .await
    .map_err(|e| unavailable("docker version negotiation", e.text()))?;
    let host_cpus = match call_with(opts.call_timeout, "info", docker.info()).await {
        Ok(info) => info.ncpu,
        Err(e) => {
            tracing::warn!(error = %e.text(), "docker info failed; CPU caps not clamped to the host");
            None
        }
    };
    let network = ensure_network(&docker, opts)
        .await
        .map_err(|e| unavailable(&format!("docker network {}", opts.network), e.text()))?;
    let gateway = network_gateway(&network);
    tracing::info!(
        endpoint = ?endpoint,
        api_version = %docker.client_version(),
        network = %opts.network,
        gateway = ?gateway,
        "docker provisioner connected"
    );
    Ok(Engine {
        docker,
        gateway,
        host_cpus,
    })
}

/// Find the network, creating it (bridge, labelled managed) when absent.
///
/// Engines before API 1.44 do not refuse a second network with the same
/// name, so two platforms connecting at once can both create one, after
/// which the name is ambiguous. Every connector therefore keeps the oldest
/// of the same-named networks and removes the others: a connector that saw
/// only its own network saw the oldest one, so all of them agree.
async fn ensure_network(
    docker: &Docker,
    opts: &DockerOptions,
) -> Result<NetworkInspect, CallError> {
    let t = opts.call_timeout;
    let mut ids = same_named(docker, opts).await?;
    if ids.is_empty() {
        let request = NetworkCreateRequest {
            name: opts.network.clone(),
            driver: Some("bridge".into()),
            labels: Some(labels_managed()),
            ..Default::default()
        };
        match call_with(t, "create_network", docker.create_network(request)).await {
            Ok(_) => tracing::info!(network = %opts.network, "created docker network"),
            // Another platform process created it first: fine.
            Err(e) if e.status() == Some(409) => {}
            Err(e) => return Err(e),
        }
        ids = same_named(docker, opts).await?;
    }
    let Some(keep) = ids.first().cloned() else {
        return Err(CallError::Docker(
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                message: format!("network {} vanished after creation", opts.network),
            },
        ));
    };
    for duplicate in &ids[1..] {
        tracing::warn!(network = %opts.network, id = %duplicate, "removing duplicate docker network");
        if let Err(e) = call_with(t, "remove_network", docker.remove_network(duplicate)).await {
            tracing::warn!(network = %opts.network, id = %duplicate, error = %e.text(), "could not remove duplicate network");
        }
    }
    call_with(t, "inspect_network", docker.inspect_network(&keep, None)).await
}

/// Ids of the networks named exactly `opts.network`, oldest first. (The
/// list API's name filter also matches substrings.)
async fn same_named(docker: &Docker, opts: &DockerOptions) -> Result<Vec<String>, CallError> {
    let filters = HashMap::from([("name", vec![opts.network.clone()])]);
    let list_opts = ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    let networks = call_with(
        opts.call_timeout,
        "list_networks",
        docker.list_networks(Some(list_opts)),
    )
    .await?;
    let mut found: Vec<((String, u32), String)> = networks
        .into_iter()
        .filter(|n| n.name.as_deref() == Some(opts.network.as_str()))
        .filter_map(|n| {
            // Read through JSON: the typed field's type depends on bollard's
            // chrono/time features.
            let created = serde_json::to_value(&n)
                .ok()
                .and_then(|v| v.get("Created")?.as_str().map(created_key))
                .unwrap_or((String::from("~"), 0));
            Some((created, n.id?))
        })
        .collect();
    found.sort();
    Ok(found.into_iter().map(|(_, id)| id).collect())
}

/// A sortable key for an RFC 3339 timestamp from one daemon: the text up to
/// the fraction, then the fraction in nanoseconds. Docker trims trailing
/// zeros of the fraction, so the raw strings do not sort.
pub(crate) fn created_key(created: &str) -> (String, u32) {
    let time_start = created.find('T').map_or(0, |t| t + 1);
    let end = created[time_start..]
        .find(['.', 'Z', '+', '-'])
        .map_or(created.len(), |i| time_start + i);
    let (seconds, rest) = created.split_at(end);
    let digits: String = rest
        .strip_prefix('.')
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .take(9)
        .collect();
    let nanos = format!("{digits:0<9}").parse().unwrap_or(0);
    (seconds.to_string(), nanos)
}

/// The first IPv4 gateway of the network's IPAM config.
pub(crate) fn network_gateway(network: &NetworkInspect) -> Option<IpAddr> {
    network
        .ipam
        .as_ref()?
        .config
        .as_ref()?
        .iter()
        .filter_map(|c| c.gateway.as_deref()?.parse::<IpAddr>().ok())
        .find(IpAddr::is_ipv4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{Ipam, IpamConfig};

    #[test]
    fn endpoints_follow_docker_host_conventions() {
        let unix = |p: &str| Ok(Endpoint::Unix(p.into()));
        let cases = [
            (None, unix(DEFAULT_DOCKER_SOCKET)),
            (Some(""), unix(DEFAULT_DOCKER_SOCKET)),
            (
                Some("unix:///run/user/1000/docker.sock"),
                unix("/run/user/1000/docker.sock"),
            ),
            (Some("/tmp/d.sock"), unix("/tmp/d.sock")),
            (
                Some("tcp://127.0.0.1:2375"),
                Ok(Endpoint::Tcp("tcp://127.0.0.1:2375".into())),
            ),
        ];
        for (host, want) in cases {
            assert_eq!(Endpoint::parse(host), want, "{host:?}");
        }
        assert!(Endpoint::parse(Some("ssh://me@box")).is_err());
        assert!(Endpoint::parse(Some("npipe:////./pipe/docker_engine")).is_err());
    }

    #[test]
    fn creation_times_sort_despite_trimmed_fractions() {
        let mut times = vec![
            "2026-05-07T21:09:36.123456789Z",
            "2026-05-07T21:09:36.12345Z",
            "2026-05-07T21:09:36Z",
            "2026-05-07T21:09:35.9Z",
        ];
        assert_eq!(
            created_key("2026-05-07T23:09:36.5+02:00"),
            ("2026-05-07T23:09:36".to_string(), 500_000_000)
        );
        times.sort_by_key(|t| created_key(t));
        assert_eq!(
            times,
            [
                "2026-05-07T21:09:35.9Z",
                "2026-05-07T21:09:36Z",
                "2026-05-07T21:09:36.12345Z",
                "2026-05-07T21:09:36.123456789Z",
            ]
        );
    }

    #[test]
    fn gateway_is_the_first_ipv4() {
        let cfg = |gw: Option<&str>| IpamConfig {
            gateway: gw.map(Into::into),
            ..Default::default()
        };
        let net = |configs| NetworkInspect {
            ipam: Some(Ipam {
                config: Some(configs),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            network_gateway(&net(vec![cfg(Some("fd00::1")), cfg(Some("172.18.0.1"))])),
            Some("172.18.0.1".parse().unwrap())
        );
        assert_eq!(network_gateway(&net(vec![cfg(None)])), None);
        assert_eq!(network_gateway(&NetworkInspect::default()), None);
    }

    #[tokio::test]
    async fn missing_socket_is_a_clean_unavailable_error() {
        let opts = DockerOptions {
            host: Some("unix:///nonexistent/molecule-test/docker.sock".into()),
            ..Default::default()
        };
        let err = connect(&opts).await.err().expect("connect must fail");
        assert!(matches!(err, ProvisionError::Unavailable(_)), "{err:?}");
    }
}
