//! Operational endpoints: no state and no rules, only the edge. `GET /health`
//! ([`handlers::health`]) answers from the function alone; [`handlers::default_route`]
//! answers what matches no route.

pub mod handlers;
