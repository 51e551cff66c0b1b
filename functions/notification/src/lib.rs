//! The Notification service: one message per event that calls for one (welcome, order
//! confirmation, payment receipt, payment failed, order cancelled), sent through the
//! configured channel and kept for `GET /notifications`.

pub mod clients;
pub mod consumer;
pub mod domain;
pub mod handlers;
pub mod store;
