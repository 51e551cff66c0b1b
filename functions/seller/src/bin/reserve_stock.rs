//! `POST /internal/inventory/reservations (IAM)`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let store = seller::store::dynamo::DynamoStore::from_env(&shared::config::start().await)?;
    shared::http::run(|request| seller::handlers::inventory::reserve(&store, request)).await
}
