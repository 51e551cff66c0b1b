//! The Notification service: one message per event that calls for one (welcome, order
//! confirmation, payment receipt and failure, cancellation, shipped, delivered, seller
//! approved and suspended), delivered once on each channel its user chose (email through SES,
//! SMS and push through SNS) and kept for `GET /notifications`; addresses that bounced or complained
//! get no more email.

pub mod clients;
pub mod consumer;
pub mod domain;
pub mod feedback;
pub mod handlers;
pub mod messages;
pub mod store;
