//! The Lambda edge of the Auth service: event in, domain call, response or problem out.

pub mod authorizer;
pub mod get_user;
pub mod login;
pub mod me;
pub mod register;

use serde::Serialize;
use shared::Problem;

use crate::domain::User;
use crate::store::StoreError;
use crate::tokens::{KeyError, TOKEN_TTL_SECONDS, Tokens};

/// Register's and login's answer (docs/api.md, Auth: `session`).
#[derive(Debug, Serialize)]
pub struct Session {
    pub user: User,
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

impl Session {
    pub fn start(user: User, tokens: &Tokens) -> Result<Self, Problem> {
        let access_token = tokens.issue(&user, chrono::Utc::now()).map_err(key_failure)?;
        Ok(Self { user, access_token, token_type: "Bearer", expires_in: TOKEN_TTL_SECONDS })
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::EmailTaken => Problem::conflict("an account with this email address already exists"),
            StoreError::Unavailable(detail) => {
                tracing::error!(%detail, "account store unavailable");
                Problem::unavailable("the account store is unavailable; try again shortly")
            }
        }
    }
}

/// A throttle's refusal (`type` `/problems/{kind}`), with `Retry-After` for the time left.
fn throttled(wait: std::time::Duration, kind: &'static str, title: &'static str, what: &str) -> Problem {
    use lambda_http::http::{StatusCode, header};
    let seconds = wait.as_secs().max(1);
    Problem::new(StatusCode::TOO_MANY_REQUESTS, kind, title, format!("{what}; try again in {seconds} seconds"))
        .header(header::RETRY_AFTER, seconds.to_string())
}

fn key_failure(error: KeyError) -> Problem {
    tracing::error!(%error, "cannot sign tokens");
    Problem::internal()
}
