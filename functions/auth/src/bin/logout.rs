//! `POST /auth/logout`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let store = auth::store::dynamo::DynamoStore::from_env(&sdk)?;
    shared::http::run(|request| auth::handlers::logout::logout(&store, request)).await
}
