//! `POST /auth/refresh`.
use auth::handlers::refresh::Refresh;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let service = Refresh {
        store: auth::store::dynamo::DynamoStore::from_env(&sdk)?,
        key: auth::clients::SigningKey::from_env(&sdk)?,
    };
    shared::http::run(|request| service.handle(request)).await
}
