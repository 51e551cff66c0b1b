//! Publishes Seller events left in its outbox (scheduled).
use seller::store::SellerStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = shared::config::start().await;
    let store = seller::store::dynamo::DynamoStore::from_env(&sdk)?;
    let publisher = shared::publisher::SnsPublisher::from_env(aws_sdk_sns::Client::new(&sdk))?;
    shared::outbox::run_relay(store.outbox().clone(), publisher).await
}
