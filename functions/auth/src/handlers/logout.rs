//! `POST /auth/logout` (auth): revokes the family of the caller's refresh token (docs/api.md,
//! Auth): no token of that login refreshes again. The access tokens already issued stay
//! valid until they expire (15 minutes): verifying them needs no store, by design.

use lambda_http::Request;
use shared::caller::caller;
use shared::http::json_body;
use shared::{Problem, Reply};

use super::refresh::RefreshBody;
use crate::refresh::RefreshToken;
use crate::store::UserStore;

pub async fn logout<S: UserStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let caller = caller(&request)?;
    let body = json_body::<RefreshBody>(&request)?;
    let token = RefreshToken::parse(&body.refresh_token)
        .ok_or_else(|| Problem::bad_request("refresh_token is not a refresh token this service issues"))?;
    // An unknown token, or someone else's, is logged out already as far as the caller can
    // tell: 204 all the same, revealing nothing.
    if let Some(stored) = store.refresh_token(&token.hash()).await?
        && stored.user_id == caller.user_id
    {
        store.revoke_family(&stored.family).await?;
        tracing::info!(family = %stored.family, "logged out");
    }
    Ok(Reply::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use crate::handlers::refresh::tests::{ada_logged_in, refresh};
    use shared::caller::AuthorizerContext;
    use testkit::requests::{body, call, sample, with_authorizer, with_body};

    fn request(user_id: &str, body_text: &str) -> Request {
        let request = with_body(sample("http-post-auth-logout.json"), body_text);
        with_authorizer(request, &AuthorizerContext::caller(user_id, Role::Customer))
    }

    #[tokio::test]
    async fn logout_revokes_the_family_and_only_the_owner_can() {
        let (service, first) = ada_logged_in().await;
        let hash = RefreshToken::parse(&first).unwrap().hash();
        let ada = service.store.refresh_token(&hash).await.unwrap().unwrap().user_id;
        let second = body(&refresh(&service, &first).await)["refresh_token"].as_str().unwrap().to_owned();
        let json = serde_json::json!({"refresh_token": second}).to_string();
        let stranger = call(&|r| logout(&service.store, r), request("usr_other", &json)).await;
        assert_eq!(stranger.status(), 204, "nothing revealed");
        let third = refresh(&service, &second).await;
        assert_eq!(third.status(), 200, "and nothing revoked");
        let third = body(&third)["refresh_token"].as_str().unwrap().to_owned();
        // Logging out with the newest token ends the login: even a token spent long ago is
        // no key to it any more.
        let json = serde_json::json!({"refresh_token": third}).to_string();
        assert_eq!(call(&|r| logout(&service.store, r), request(&ada, &json)).await.status(), 204);
        assert_eq!(refresh(&service, &third).await.status(), 401);
        assert_eq!(call(&|r| logout(&service.store, r), request(&ada, &json)).await.status(), 204, "twice is fine");
    }

    #[tokio::test]
    async fn malformed_bodies_are_400_and_an_anonymous_call_401() {
        let (service, _) = ada_logged_in().await;
        for bad in ["{}", r#"{"refresh_token": "nope"}"#, r#"{"refresh_token": 1}"#] {
            assert_eq!(call(&|r| logout(&service.store, r), request("usr_1", bad)).await.status(), 400, "{bad}");
        }
        let anonymous = with_authorizer(
            with_body(sample("http-post-auth-logout.json"), "{}"),
            &AuthorizerContext::rejected("the Authorization header is missing"),
        );
        assert_eq!(call(&|r| logout(&service.store, r), anonymous).await.status(), 401);
    }
}
