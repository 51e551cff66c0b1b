//! devstack: the local stack. It reads template.yaml, the single source of truth, provisions
//! its resources on an AWS emulator, and runs the functions as API Gateway, Lambda and the
//! SQS event source mappings would: the same binaries that `sam deploy` ships.

pub mod admin;
pub mod asyncapi;
pub mod console;
pub mod functions;
pub mod gateway;
pub mod iam;
pub mod jwt;
pub mod pollers;
pub mod provision;
pub mod proxy;
pub mod push;
pub mod runtime;
pub mod seed;
pub mod serve;
pub mod sigv4;
pub mod stripe;
pub mod template;
pub mod throttle;
pub mod xray;

use std::path::{Path, PathBuf};

/// The repository root (where template.yaml lives), from this crate's location.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| PathBuf::from("."))
}
