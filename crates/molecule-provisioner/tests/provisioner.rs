//! Integration tests of both provisioner backends: the Docker backend
//! against the real engine (a tiny FROM-scratch busybox image the tests
//! build themselves, and the agent image `cargo xtask image` builds for the
//! files API; nothing is pulled), and the local backend with small shell
//! scripts as the workspace program.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "provisioner/docker_backend.rs"]
mod docker_backend;
#[path = "provisioner/docker_files.rs"]
mod docker_files;
#[path = "provisioner/local_backend.rs"]
mod local_backend;
#[path = "provisioner/local_files.rs"]
mod local_files;
#[path = "provisioner/support.rs"]
mod support;
