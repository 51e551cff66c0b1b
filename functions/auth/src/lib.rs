//! The Auth service: accounts (argon2id passwords, emails unique in their canonical form),
//! access tokens (EdDSA JWTs: signed with a private key from Secrets Manager, verified with the
//! published public keys), refresh tokens, the token authorizer of the HTTP API, throttling
//! by client address, and `user.registered`.

pub mod admin;
pub mod clients;
pub mod domain;
pub mod handlers;
pub mod passwords;
pub mod refresh;
pub mod store;
pub mod tokens;

#[cfg(test)]
mod fuzz;
