//! `POST /auth/refresh`: spends a refresh token for a new session of its family (docs/api.md,
//! Auth). Every refusal is 401, for an unknown, expired, revoked or spent token alike; a
//! spent one presented again revokes its whole family (whoever holds the newest token, thief
//! or customer, must log in again). The spend, the next token and the family's check are one
//! conditional transaction (`UserStore::rotate`): of two refreshes of one token, one wins
//! and the other is refused, so one token never has two live successors.

use chrono::Utc;
use lambda_http::Request;
use serde::Deserialize;
use shared::http::json_body;
use shared::{Problem, Reply};

use super::Session;
use crate::clients::SigningKey;
use crate::refresh::{RefreshToken, Stored};
use crate::store::UserStore;

/// The body of `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Debug, Deserialize)]
pub struct RefreshBody {
    pub refresh_token: String,
}

pub struct Refresh<S> {
    pub store: S,
    pub key: SigningKey,
}

fn refused(why: &str) -> Problem {
    tracing::info!(why, "refresh refused");
    Problem::unauthorized(format!("the refresh token {why}; log in again"))
}

impl<S: UserStore> Refresh<S> {
    pub async fn handle(&self, request: Request) -> Result<Reply, Problem> {
        let body = json_body::<RefreshBody>(&request)?;
        let token =
            RefreshToken::parse(&body.refresh_token).ok_or_else(|| refused("is not one this service issued"))?;
        let now = Utc::now();
        let stored = self.store.refresh_token(&token.hash()).await?.ok_or_else(|| refused("is unknown"))?;
        if stored.expired(now) {
            return Err(refused("has expired"));
        }
        let family = self.store.family(&stored.family).await?;
        if family.is_none_or(|family| family.revoked) {
            return Err(refused("was revoked"));
        }
        if stored.spent {
            // Someone else holds a copy: end every session of this login.
            self.store.revoke_family(&stored.family).await?;
            tracing::warn!(family = %stored.family, user_id = %stored.user_id, "a spent refresh token came back: family revoked");
            return Err(refused("was used already, so every session of its login is ended"));
        }
        let user = self.store.user(&stored.user_id).await?.ok_or_else(|| refused("belongs to no account"))?;
        // Signed before the spend: a key that cannot be read spends nothing.
        let access_token = super::issue(&user, &self.key, now).await?;
        let (next_token, next) = Stored::issue(&user.user_id, &stored.family, now);
        if !self.store.rotate(&stored, &next).await? {
            return Err(refused("was used by another request at the same time"));
        }
        Ok(Reply::ok(&Session::of(user, access_token, next_token)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::handlers::login::tests::service_with_ada;
    use crate::store::memory::MemoryStore;
    use crate::tokens::tests::{signer, verifier};
    use testkit::requests::{body, call, sample, with_body};

    /// Ada's store, and the refresh token of her login.
    pub(crate) async fn ada_logged_in() -> (Refresh<MemoryStore>, String) {
        let login = service_with_ada().await;
        let response = call(&|request| login.handle(request), sample("http-post-auth-login.json")).await;
        let token = body(&response)["refresh_token"].as_str().unwrap().to_owned();
        (Refresh { store: login.store, key: SigningKey::ready(signer()) }, token)
    }

    pub(crate) async fn refresh(
        service: &Refresh<MemoryStore>,
        token: &str,
    ) -> lambda_http::Response<lambda_http::Body> {
        let request =
            with_body(sample("http-post-auth-refresh.json"), &serde_json::json!({"refresh_token": token}).to_string());
        call(&|request| service.handle(request), request).await
    }

    #[tokio::test]
    async fn a_refresh_token_is_spent_for_the_next_one_and_a_new_access_token() {
        let (service, first) = ada_logged_in().await;
        let answer = refresh(&service, &first).await;
        assert_eq!(answer.status(), 200);
        let session = body(&answer);
        let second = session["refresh_token"].as_str().unwrap();
        assert_ne!(second, first);
        assert_eq!(session["user"]["email"], "ada@example.com");
        assert!(verifier().verify(session["access_token"].as_str().unwrap()).is_ok());
        let third = refresh(&service, second).await;
        assert_eq!(third.status(), 200, "the next one refreshes in turn");
    }

    #[tokio::test]
    async fn a_spent_token_presented_again_revokes_its_whole_family() {
        let (service, first) = ada_logged_in().await;
        let second = body(&refresh(&service, &first).await)["refresh_token"].as_str().unwrap().to_owned();
        let again = refresh(&service, &first).await;
        assert_eq!(again.status(), 401);
        assert!(body(&again)["detail"].as_str().unwrap().contains("used already"), "{}", body(&again));
        let revoked = refresh(&service, &second).await;
        assert_eq!(revoked.status(), 401, "the thief's (or the customer's) newer token is dead too");
        assert!(body(&revoked)["detail"].as_str().unwrap().contains("revoked"));
    }

    #[tokio::test]
    async fn unknown_malformed_and_expired_tokens_are_401_and_a_bad_body_400() {
        let (service, first) = ada_logged_in().await;
        for token in ["rt_unknown", "", RefreshToken::generate().as_str(), &format!("{first}x")] {
            assert_eq!(refresh(&service, token).await.status(), 401, "{token}");
        }
        for bad in ["{}", r#"{"refresh_token": 5}"#, "not json"] {
            let request = with_body(sample("http-post-auth-refresh.json"), bad);
            assert_eq!(call(&|request| service.handle(request), request).await.status(), 400, "{bad}");
        }
        let (token, mut old) = Stored::first("usr_x", Utc::now() - crate::refresh::REFRESH_TTL);
        old.user_id = "usr_x".into();
        service.store.start_family(&old).await.unwrap();
        assert_eq!(refresh(&service, token.as_str()).await.status(), 401, "expired");
    }

    #[tokio::test]
    async fn of_two_refreshes_of_one_token_at_once_one_wins() {
        let (service, first) = ada_logged_in().await;
        let (a, b) = tokio::join!(refresh(&service, &first), refresh(&service, &first));
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 401]);
    }
}
