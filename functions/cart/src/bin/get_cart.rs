//! `GET /cart`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let store = cart::store::dynamo::DynamoStore::from_env(&sdk)?;
    let downstream = cart::clients::HttpDownstream { client: shared::internal::InternalClient::from_env(&sdk)? };
    shared::http::run(|request| cart::handlers::cart::get(&store, &downstream, request)).await
}
