//! Typed async client of the Molecule platform's HTTP API and event WebSocket,
//! shared by the integration tests, the CLI and the agent.
//!
//! It speaks the wire DTOs of `molecule-types` and nothing else: no server,
//! store or provisioner types, and no retries or policy. A refusal comes back
//! as [`ClientError::Http`] with the platform's status and body intact, and
//! [`Client::raw`] reaches any route with any bytes, so tests can probe the
//! contract's edges with the same handle.
//!
//! ```no_run
//! # async fn demo() -> Result<(), molecule_client::ClientError> {
//! use molecule_client::Client;
//! use molecule_types::dto::CreateWorkspace;
//!
//! let admin = Client::new("http://127.0.0.1:8080");
//! let created = admin
//!     .create_workspace(&CreateWorkspace { name: "planner".into(), ..Default::default() })
//!     .await?;
//! let mut events = admin.subscribe().await?;
//! let online = events
//!     .next_matching(|e| e.event == "WORKSPACE_ONLINE", std::time::Duration::from_secs(30))
//!     .await?;
//! # let _ = (created, online);
//! # Ok(()) }
//! ```

mod client;
mod content;
mod endpoints;
mod error;
mod events;
mod terminal;
mod workspace_data;

pub use client::{Client, RawRequest, RawResponse, StreamingResponse, install_crypto_provider};
pub use error::ClientError;
pub use events::EventStream;
pub use reqwest::Method;
pub use reqwest::header::HeaderMap;
pub use terminal::{TerminalOutput, TerminalSession};
