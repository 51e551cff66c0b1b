//! `GET /analytics/summary` (sellers).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let store = ai_buddy::store::dynamo::DynamoStore::from_env(&sdk)?;
    shared::http::run(|request| ai_buddy::handlers::analytics::analytics(&store, request)).await
}
