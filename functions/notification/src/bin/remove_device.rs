//! `DELETE /notifications/devices/{device_id}`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let store = notification::store::dynamo::DynamoStore::from_env(&sdk)?;
    let endpoints = notification::clients::AwsEndpoints::from_env(&sdk)?;
    shared::http::run(|request| notification::handlers::devices::remove(&store, &endpoints, request)).await
}
