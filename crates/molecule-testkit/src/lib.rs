//! Test infrastructure for Molecule.
//!
//! [`DockerFaultProxy`] sits on a unix socket in front of the real Docker
//! engine and, request by request, either forwards to the daemon or injects
//! one of the failures seen in production (DESIGN.md, "The incident this
//! platform must never repeat"): a deadline exceeded, an EOF, a connection
//! reset, an `i/o timeout` answer, or a clean 404 on container inspect.
//! Point the server's `docker_host` at [`DockerFaultProxy::host`] and turn
//! the faults on and off while it runs.
//!
//! [`CutRelay`] sits on a TCP port in front of a real server (PostgreSQL)
//! and cuts one process off from it on demand: a partition, for that
//! process alone.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use molecule_testkit::DockerFaultProxy;
//!
//! let proxy = DockerFaultProxy::start("/var/run/docker.sock".into())?;
//! let docker_host = proxy.host(); // unix:///tmp/…/docker.sock
//! proxy.set_transient_share(0.5); // half of all calls fail transiently
//! // … drive the platform …
//! proxy.faults_off();
//! assert!(proxy.counts().transient() > 0);
//! # Ok(()) }
//! ```

mod faults;
mod proxy;
mod relay;

pub use faults::{Fault, FaultConfig, Filter, RequestInfo, Rolls, Transient, choose};
pub use proxy::{DockerFaultProxy, FaultCounts};
pub use relay::CutRelay;
