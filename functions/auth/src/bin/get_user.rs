//! `GET /internal/users/{user_id}` (IAM).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let store = auth::store::dynamo::DynamoStore::from_env(&sdk)?;
    shared::http::run(|request| auth::handlers::get_user::get_user(&store, request)).await
}
