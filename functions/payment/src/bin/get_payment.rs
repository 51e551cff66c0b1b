//! `GET /payments/{payment_id}`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let store = payment::store::dynamo::DynamoStore::from_env(&shared::config::aws().await)?;
    shared::api::run(|request, correlation_id| payment::handlers::get(&store, request, correlation_id)).await
}
