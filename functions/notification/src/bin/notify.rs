//! notification-queue: one notification per event that calls for one, delivered on each
//! channel its user chose.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = shared::config::start().await;
    let store = notification::store::dynamo::DynamoStore::from_env(&sdk)?;
    let channels = notification::clients::AwsChannels::from_env(&sdk)?;
    let endpoints = notification::clients::AwsEndpoints::from_env(&sdk)?;
    let directory = notification::clients::AuthDirectory(shared::internal::InternalClient::from_env(&sdk)?);
    let ports = notification::consumer::Ports { channels: &channels, endpoints: &endpoints, directory: &directory };
    shared::batch::run(|envelope| notification::consumer::handle(&store, &ports, envelope)).await
}
