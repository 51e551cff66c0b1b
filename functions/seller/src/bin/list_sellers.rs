//! `GET /admin/sellers?status=`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let store = seller::store::dynamo::DynamoStore::from_env(&shared::config::start().await)?;
    shared::http::run(|request| seller::handlers::sellers::list(&store, request)).await
}
