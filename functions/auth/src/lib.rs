//! The Auth service: accounts (argon2id passwords, case-insensitively unique emails), access
//! tokens (HS256 JWTs signed with a key from Secrets Manager), the token authorizer of the
//! HTTP API, login throttling and `user.registered`.

pub mod admin;
pub mod clients;
pub mod domain;
pub mod handlers;
pub mod passwords;
pub mod store;
pub mod tokens;

#[cfg(test)]
mod fuzz;
