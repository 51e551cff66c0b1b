//! What API Gateway calls: one module per function; they share nothing but `shared::http`.

pub mod default_route;
pub mod health;
