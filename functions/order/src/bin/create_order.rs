//! `POST /internal/orders (IAM)`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let sdk = shared::config::aws().await;
    let store = order::store::dynamo::DynamoStore::from_env(&sdk)?;
    let publisher = shared::publisher::SnsPublisher::from_env(aws_sdk_sns::Client::new(&sdk))?;
    shared::api::run(|request, correlation_id| order::handlers::create(&store, &publisher, request, correlation_id))
        .await
}
