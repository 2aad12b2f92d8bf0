//! The Molecule platform server: configuration, the domain services
//! (`app`), the HTTP/WebSocket surface (`http`), background tasks and the
//! boot sequence (`server`). The `molecule` binary in `main.rs` is a thin
//! wrapper around [`server::Server::start`].

pub mod app;
pub mod background;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
mod listener;
pub mod metrics;
pub mod provisioning;
pub mod server;

pub use config::Config;
pub use server::{RunningServer, Server};
