//! What every service needs and nothing service-specific: the event catalogue, publishing,
//! the SQS batch runner, the HTTP edge (problem+json, correlation ids), logging,
//! configuration and idempotency.

pub mod api;
pub mod batch;
pub mod breaker;
pub mod caller;
pub mod config;
pub mod correlation;
pub mod dynamo;
pub mod events;
pub mod idempotency;
pub mod internal;
pub mod logging;
pub mod metrics;
pub mod outbox;
pub mod pagination;
pub mod problem;
pub mod publisher;
pub mod sigv4;

#[cfg(test)]
mod fuzz;

pub use correlation::CorrelationId;
pub use events::{Envelope, Event, Topic};
pub use problem::{Problem, Reply};
