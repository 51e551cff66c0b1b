//! order-updates-queue: `payment.completed` -> paid, `payment.failed` -> payment_failed.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = shared::config::start().await;
    let store = order::store::dynamo::DynamoStore::from_env(&sdk)?;
    let publisher = shared::publisher::SnsPublisher::from_env(aws_sdk_sns::Client::new(&sdk))?;
    shared::batch::run(|envelope| order::consumer::handle(&store, &publisher, envelope)).await
}
