//! The Order service: orders created by checkout (idempotent on the order id), read and
//! cancelled by their customer, each change written with its event (the outbox).

pub mod consumer;
pub mod domain;
pub mod handlers;
pub mod store;

#[cfg(test)]
mod fuzz;
