//! seller-updates-queue: commits reservations on `order.created`, releases on `order.cancelled`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = shared::config::start().await;
    let store = seller::store::dynamo::DynamoStore::from_env(&sdk)?;
    let publisher = shared::publisher::SnsPublisher::from_env(aws_sdk_sns::Client::new(&sdk))?;
    shared::batch::run(|envelope| seller::consumer::handle(&store, &publisher, envelope)).await
}
