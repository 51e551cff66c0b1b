//! notification-queue: one notification per event that calls for one.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = shared::config::start().await;
    let store = notification::store::dynamo::DynamoStore::from_env(&sdk)?;
    let claims = shared::idempotency::DynamoIdempotency::new(store.table().client.clone(), store.table().name.clone());
    let sender = notification::clients::Configured::from_env(&sdk)?;
    let directory = notification::clients::AuthDirectory(shared::internal::InternalClient::from_env(&sdk)?);
    shared::batch::run(|envelope| notification::consumer::handle(&store, &claims, &sender, &directory, envelope)).await
}
