//! AI Buddy: learns from `user.*`, `order.*` and `payment.*` events (profiles, co-purchases,
//! category affinity, popularity, seller analytics) and answers recommendations, a
//! deterministic assistant and seller analytics. No external model.

pub mod clients;
pub mod consumer;
pub mod domain;
pub mod handlers;
pub mod store;
