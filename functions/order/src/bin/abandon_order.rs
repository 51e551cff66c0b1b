//! `POST /internal/orders/{order_id}/abandon (IAM)`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let store = order::store::dynamo::DynamoStore::from_env(&shared::config::aws().await)?;
    shared::api::run(|request, correlation_id| order::handlers::abandon(&store, request, correlation_id)).await
}
