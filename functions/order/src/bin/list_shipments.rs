//! `GET /seller/shipments`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let store = order::store::dynamo::DynamoStore::from_env(&shared::config::start().await)?;
    shared::http::run(|request| order::handlers::shipments::list(&store, request)).await
}
