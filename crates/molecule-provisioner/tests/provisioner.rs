//! Integration tests of both provisioner backends: the Docker backend
//! against the real engine (a tiny FROM-scratch busybox image the tests
//! build themselves; nothing is pulled), and the local backend with small
//! shell scripts as the workspace program.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "provisioner/docker_backend.rs"]
mod docker_backend;
#[path = "provisioner/local_backend.rs"]
mod local_backend;
#[path = "provisioner/support.rs"]
mod support;
