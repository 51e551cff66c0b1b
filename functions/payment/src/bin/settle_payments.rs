//! payment-settlement-queue: settles on `order.created`, voids or refunds on `order.cancelled`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = shared::config::start().await;
    let store = payment::store::dynamo::DynamoStore::from_env(&sdk)?;
    let publisher = shared::publisher::SnsPublisher::from_env(aws_sdk_sns::Client::new(&sdk))?;
    let gateway = payment::clients::stripe::StripeGateway::from_env(&sdk)?;
    shared::batch::run(|envelope| payment::consumer::handle(&store, &gateway, &publisher, envelope)).await
}
