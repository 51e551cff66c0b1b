//! `POST /auth/register`.
use auth::handlers::register::Register;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let sdk = shared::config::aws().await;
    let service = Register {
        store: auth::store::dynamo::DynamoStore::from_env(&sdk)?,
        publisher: shared::publisher::SnsPublisher::from_env(aws_sdk_sns::Client::new(&sdk))?,
        passwords: auth::passwords::Passwords::new()?,
        tokens: auth::signing_key::load(&sdk).await?,
    };
    shared::api::run(|request, correlation_id| service.handle(request, correlation_id)).await
}
