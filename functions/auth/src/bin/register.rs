//! `POST /auth/register`.
use auth::handlers::register::Register;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let service = Register {
        store: auth::store::dynamo::DynamoStore::from_env(&sdk)?,
        publisher: shared::publisher::SnsPublisher::from_env(aws_sdk_sns::Client::new(&sdk))?,
        passwords: auth::passwords::Passwords::new()?,
        key: auth::clients::SigningKey::from_env(&sdk)?,
        registrations_per_address: shared::config::parsed(
            "REGISTRATIONS_PER_ADDRESS",
            auth::handlers::register::REGISTRATIONS_PER_ADDRESS,
        )?,
    };
    shared::http::run(|request| service.handle(request)).await
}
