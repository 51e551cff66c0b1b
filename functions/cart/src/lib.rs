//! The Cart service: carts priced from the catalogue, the checkout chain
//! (`handlers::checkout`), and the reconciler that undoes what a crashed checkout left behind.

pub mod clients;
pub mod consumer;
pub mod domain;
pub mod handlers;
pub mod reconcile;
pub mod store;

#[cfg(test)]
mod fuzz;
