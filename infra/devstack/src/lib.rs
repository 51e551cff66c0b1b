//! devstack: the local stack. It reads template.yaml, the single source of truth, and
//! provisions its resources on an AWS emulator.

pub mod provision;
pub mod template;

use std::path::{Path, PathBuf};

/// The repository root (where template.yaml lives), from this crate's location.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}
