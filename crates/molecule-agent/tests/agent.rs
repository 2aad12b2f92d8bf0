//! The agent's one integration-test binary: agents started in-process on
//! `127.0.0.1:0` through `molecule_agent::start`, spoken to over real HTTP,
//! plus the built binary spawned as a process for what only a process shows
//! (exit codes, signals, environment parsing).
//!
//! - `rpc`: every JSON-RPC method, the card routes, malformed requests.
//! - `streaming`: `message/stream` events arrive while the executor works.
//! - `platform`: registration, token handling and heartbeats against a fake
//!   platform that records calls.
//! - `binary`: the fault hook, SIGTERM, removal.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "agent/binary.rs"]
mod binary;
#[path = "agent/platform.rs"]
mod platform;
#[path = "agent/rpc.rs"]
mod rpc;
#[path = "agent/streaming.rs"]
mod streaming;
#[path = "agent/support.rs"]
mod support;
