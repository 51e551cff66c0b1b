//! `POST /internal/payments/authorize (IAM)`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let store = payment::store::dynamo::DynamoStore::from_env(&shared::config::start().await)?;
    let gateway = payment::clients::SandboxGateway;
    shared::http::run(|request| payment::handlers::internal::authorize(&store, &gateway, request)).await
}
