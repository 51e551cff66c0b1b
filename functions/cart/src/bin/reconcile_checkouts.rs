//! Undoes checkouts left behind (scheduled; see `cart::reconcile`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    let sdk = shared::config::aws().await;
    let store = cart::store::dynamo::DynamoStore::from_env(&sdk)?;
    let downstream = cart::downstream::HttpDownstream { client: shared::internal::InternalClient::from_env(&sdk)? };
    cart::reconcile::run(store, downstream).await
}
