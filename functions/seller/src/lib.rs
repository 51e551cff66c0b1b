//! The Seller service: the product catalogue (sellers create and update their products,
//! everyone reads) and its stock, which only conditional writes change: reservations take
//! units for a whole order or none, releases give them back once.

pub mod consumer;
pub mod domain;
pub mod handlers;
pub mod store;

#[cfg(test)]
mod fuzz;
