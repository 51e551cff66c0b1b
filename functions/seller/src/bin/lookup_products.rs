//! `POST /internal/products/lookup (IAM)`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let store = seller::store::dynamo::DynamoStore::from_env(&shared::config::aws().await)?;
    shared::api::run(|request, correlation_id| seller::handlers::inventory::lookup(&store, request, correlation_id))
        .await
}
