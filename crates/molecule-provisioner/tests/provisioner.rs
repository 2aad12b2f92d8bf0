//! Integration tests of both provisioner backends: the Docker backend
//! against the real engine (a tiny FROM-scratch busybox image the tests
//! build themselves; nothing is pulled), and the local backend with small
//! shell scripts as the workspace program.

#[path = "provisioner/docker_backend.rs"]
mod docker_backend;
#[path = "provisioner/local_backend.rs"]
mod local_backend;
#[path = "provisioner/support.rs"]
mod support;
