//! `POST /assistant/messages`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let sdk = shared::config::aws().await;
    let store = ai_buddy::store::DynamoStore::from_env(&sdk)?;
    let services = ai_buddy::services::Http(shared::internal::InternalClient::from_env(&sdk)?);
    shared::api::run(|request, correlation_id| {
        ai_buddy::handlers::assistant(&store, &services, request, correlation_id)
    })
    .await
}
