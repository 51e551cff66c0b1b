//! notification-queue: one notification per event that calls for one.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    let sdk = shared::config::aws().await;
    let store = notification::store::DynamoStore::from_env(&sdk)?;
    let claims = shared::idempotency::DynamoIdempotency::new(store.table().client.clone(), store.table().name.clone());
    let sender = notification::sender::Configured::from_env(&sdk)?;
    let directory = notification::consumer::AuthDirectory(shared::internal::InternalClient::from_env(&sdk)?);
    shared::batch::run(|envelope| notification::consumer::handle(&store, &claims, &sender, &directory, envelope)).await
}
