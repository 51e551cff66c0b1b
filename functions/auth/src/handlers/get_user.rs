//! `GET /internal/users/{user_id}` (IAM): a user for other services (AI Buddy, Notification).

use lambda_http::Request;
use shared::contracts;
use shared::http::path_parameter;
use shared::{Problem, Reply};

use crate::store::UserStore;

pub async fn get_user<S: UserStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let user_id = path_parameter(&request, "user_id")?;
    match store.user(&user_id).await? {
        Some(user) => Ok(Reply::ok(&contracts::User::from(user))),
        None => Err(Problem::not_found(format!("no user {user_id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use crate::store::memory::MemoryStore;
    use crate::tokens::tests::user;
    use testkit::requests::{body, sample};

    #[tokio::test]
    async fn known_users_are_found_and_unknown_ones_are_404() {
        let store = MemoryStore::default();
        let handler = |request| get_user(&store, request);
        let response = testkit::requests::call(&handler, sample("http-get-internal-user.json")).await;
        assert_eq!(response.status(), 404);

        let mut user = user(Role::Customer);
        user.user_id = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A".into();
        store.create(&user, "hash", &user.registered(&shared::CorrelationId::generate())).await.unwrap();
        let response = testkit::requests::call(&handler, sample("http-get-internal-user.json")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(body(&response)["email"], "a@example.com");
    }
}
