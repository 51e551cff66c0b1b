//! `POST /internal/payments/authorize (IAM)`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let sdk = shared::config::start().await;
    let store = payment::store::dynamo::DynamoStore::from_env(&sdk)?;
    let gateway = payment::clients::stripe::StripeGateway::from_env(&sdk)?;
    shared::http::run(|request| payment::handlers::internal::authorize(&store, &gateway, request)).await
}
