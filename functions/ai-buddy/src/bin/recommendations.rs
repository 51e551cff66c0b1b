//! `GET /recommendations`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let store = ai_buddy::store::dynamo::DynamoStore::from_env(&sdk)?;
    let services = ai_buddy::clients::Http(shared::internal::InternalClient::from_env(&sdk)?);
    shared::http::run(|request| ai_buddy::handlers::recommendations::recommendations(&store, &services, request)).await
}
