//! The adversarial suite (issue 12): a real server attacked the way the
//! hardening review attacked it, one file per front. Each test failed
//! before its fix.

pub mod activity;
mod auth;
mod edge;
mod outbound;
