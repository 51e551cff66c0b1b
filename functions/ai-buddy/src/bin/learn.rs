//! ai-events-queue: learns profiles, co-purchases, popularity and seller sales.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = shared::config::start().await;
    let store = ai_buddy::store::dynamo::DynamoStore::from_env(&sdk)?;
    let services = ai_buddy::clients::Http(shared::internal::InternalClient::from_env(&sdk)?);
    let claims = shared::idempotency::DynamoIdempotency::new(store.table().client.clone(), store.table().name.clone());
    shared::batch::run(|envelope| ai_buddy::consumer::handle(&store, &claims, &services, envelope)).await
}
