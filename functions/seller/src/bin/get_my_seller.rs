//! `GET /sellers/me`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let store = seller::store::dynamo::DynamoStore::from_env(&shared::config::start().await)?;
    shared::http::run(|request| seller::handlers::sellers::me(&store, request)).await
}
