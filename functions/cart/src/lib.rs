//! The Cart service: carts priced from the catalogue, and the checkout chain.

pub mod checkout;
pub mod consumer;
pub mod domain;
pub mod downstream;
pub mod handlers;
pub mod reconcile;
pub mod store;

#[cfg(test)]
mod tests;
