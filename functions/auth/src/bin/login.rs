//! `POST /auth/login`.
use auth::handlers::login::LogIn;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let service = LogIn {
        store: auth::store::dynamo::DynamoStore::from_env(&sdk)?,
        passwords: auth::passwords::Passwords::new()?,
        key: auth::clients::SigningKey::from_env(&sdk)?,
    };
    shared::http::run(|request| service.handle(request)).await
}
