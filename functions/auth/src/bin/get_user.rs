//! `GET /internal/users/{user_id}` (IAM).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let sdk = shared::config::aws().await;
    let store = auth::store::dynamo::DynamoStore::from_env(&sdk)?;
    shared::api::run(|request, correlation_id| auth::handlers::get_user::get_user(&store, request, correlation_id))
        .await
}
