//! What every service needs and nothing service-specific: the event catalogue, publishing,
//! the SQS batch runner, the HTTP edge (problem+json, correlation ids), logging,
//! configuration and idempotency.

pub mod batch;
pub mod breaker;
pub mod caller;
pub mod config;
pub mod contracts;
pub mod correlation;
pub mod dynamo;
pub mod errors;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod internal;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod outbox;
pub mod pagination;
pub mod publisher;
pub mod sigv4;

#[cfg(test)]
mod fuzz;

pub use correlation::CorrelationId;
pub use errors::{Invalid, Retry};
pub use events::{Envelope, Event, Topic};
pub use http::{Problem, Reply};

/// The one currency: prices, orders and payments are whole cents of it (docs/api.md).
pub const CURRENCY: &str = "USD";
