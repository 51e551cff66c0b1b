//! `POST /webhooks/stripe` (no authorizer; signed by Stripe).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let store = payment::store::dynamo::DynamoStore::from_env(&sdk)?;
    let publisher = shared::publisher::SnsPublisher::from_env(aws_sdk_sns::Client::new(&sdk))?;
    let stripe = payment::handlers::webhooks::StripeProvider::from_env(&sdk)?;
    shared::http::run(|request| payment::handlers::webhooks::receive(&store, &stripe, &publisher, request)).await
}
