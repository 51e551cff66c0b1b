//! Test support for the workspace's tests, kept out of `shared` so that no shipped crate
//! carries code that panics and reads files from the source tree. Crates take it as a
//! `[dev-dependencies]` entry only (the money simulation, itself test-only, as a normal one).
//!
//! - [`requests`]: the samples in `events/` as the requests and envelopes handlers see, run
//!   through the functions' HTTP edge.
//! - [`props`]: what the fuzz properties share (arbitrary JSON, edited samples, the
//!   contract every HTTP answer keeps, a config that keeps the failures it finds).
//!
//! Both have a `body`, one a response's JSON and one a strategy of request bodies, so
//! nothing is re-exported here: call sites name the module.

pub mod props;
pub mod requests;
