//! email-feedback-queue: SES bounces and complaints suppress their address.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = shared::config::start().await;
    let store = notification::store::dynamo::DynamoStore::from_env(&sdk)?;
    shared::batch::run_bodies(|body| notification::feedback::handle(&store, body)).await
}
