//! `GET /auth/me` (auth): the caller's own user.

use lambda_http::Request;
use shared::caller::caller;
use shared::{Problem, Reply};

use crate::store::UserStore;

pub async fn me<S: UserStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let caller = caller(&request)?;
    match store.user(&caller.user_id).await? {
        Some(user) => Ok(Reply::ok(&user)),
        // A valid token for an account that no longer exists.
        None => Err(Problem::unauthorized("the account of this token no longer exists")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use crate::store::memory::MemoryStore;
    use crate::tokens::tests::user;
    use shared::caller::AuthorizerContext;
    use testkit::requests::{body, sample, with_authorizer};

    #[tokio::test]
    async fn the_caller_gets_their_own_user() {
        let store = MemoryStore::default();
        let user = user(Role::Seller);
        store.create(&user, "hash", &user.registered(&shared::CorrelationId::generate())).await.unwrap();
        let handler = |request| me(&store, request);

        let request =
            with_authorizer(sample("http-get-auth-me.json"), &AuthorizerContext::caller(&user.user_id, Role::Seller));
        let response = testkit::requests::call(&handler, request).await;
        assert_eq!(response.status(), 200);
        let shown = body(&response);
        assert_eq!(shown["user_id"], user.user_id.as_str());
        assert_eq!(shown["role"], "seller");
        assert!(shown.get("password_hash").is_none());

        let refused =
            with_authorizer(sample("http-get-auth-me.json"), &AuthorizerContext::rejected("the token has expired"));
        let response = testkit::requests::call(&handler, refused).await;
        assert_eq!(response.status(), 401);
        assert_eq!(body(&response)["detail"], "the token has expired");
    }
}
