//! `GET /payments/{payment_id}`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let store = payment::store::dynamo::DynamoStore::from_env(&shared::config::start().await)?;
    shared::http::run(|request| payment::handlers::payments::get(&store, request)).await
}
