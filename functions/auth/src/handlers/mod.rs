//! The Lambda edge of the Auth service: event in, domain call, response or problem out.

pub mod authorizer;
pub mod get_user;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod me;
pub mod refresh;
pub mod register;

use serde::Serialize;
use shared::Problem;

use crate::clients::SigningKey;
use crate::domain::User;
use crate::refresh::{RefreshToken, Stored};
use crate::store::{StoreError, UserStore};
use crate::tokens::{KeyError, TOKEN_TTL_SECONDS};

/// Register's, login's and refresh's answer (docs/api.md, Auth: `session`).
#[derive(Debug, Serialize)]
pub struct Session {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

impl Session {
    /// A login's session: an access token and the first refresh token of a new family.
    pub async fn start(user: User, key: &SigningKey, store: &impl UserStore) -> Result<Self, Problem> {
        let now = chrono::Utc::now();
        // Signed first: without the key, no family is stored for nothing.
        let access_token = issue(&user, key, now).await?;
        let (refresh_token, first) = Stored::first(&user.user_id, now);
        store.start_family(&first).await?;
        Ok(Self::of(user, access_token, refresh_token))
    }

    pub fn of(user: User, access_token: String, refresh_token: RefreshToken) -> Self {
        Self {
            user,
            access_token,
            refresh_token: refresh_token.as_str().to_owned(),
            token_type: "Bearer",
            expires_in: TOKEN_TTL_SECONDS,
        }
    }
}

/// An access token for `user`.
pub async fn issue(user: &User, key: &SigningKey, now: chrono::DateTime<chrono::Utc>) -> Result<String, Problem> {
    key.signer().await.and_then(|signer| signer.issue(user, now)).map_err(key_failure)
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
    match error {
        KeyError::Unavailable(_) => Problem::unavailable("the signing key cannot be read; try again shortly"),
        _ => Problem::internal(),
    }
}
