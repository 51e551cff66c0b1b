//! `POST /seller/shipments/{shipment_id}/deliver`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let store = order::store::dynamo::DynamoStore::from_env(&sdk)?;
    let publisher = shared::publisher::SnsPublisher::from_env(aws_sdk_sns::Client::new(&sdk))?;
    shared::http::run(|request| order::handlers::shipments::deliver_shipment(&store, &publisher, request)).await
}
