//! The Payment service: authorizations (idempotent on the caller's key) through a
//! `PaymentGateway`, voids, and the owner's view of a payment.

pub mod clients;
pub mod consumer;
pub mod domain;
pub mod handlers;
pub mod moves;
pub mod store;

#[cfg(test)]
mod fuzz;
