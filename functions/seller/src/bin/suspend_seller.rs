//! `POST /admin/sellers/{seller_id}/suspend`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let store = seller::store::dynamo::DynamoStore::from_env(&sdk)?;
    let publisher = shared::publisher::SnsPublisher::from_env(aws_sdk_sns::Client::new(&sdk))?;
    shared::http::run(|request| seller::handlers::sellers::suspend(&store, &publisher, request)).await
}
