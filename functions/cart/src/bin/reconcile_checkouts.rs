//! Undoes checkouts left behind (scheduled; see `cart::reconcile`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = shared::config::start().await;
    let store = cart::store::dynamo::DynamoStore::from_env(&sdk)?;
    let downstream = cart::clients::HttpDownstream { client: shared::internal::InternalClient::from_env(&sdk)? };
    cart::reconcile::run(store, downstream).await
}
