//! `GET /notifications`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let store = notification::store::DynamoStore::from_env(&shared::config::aws().await)?;
    shared::api::run(|request, correlation_id| notification::handlers::list(&store, request, correlation_id)).await
}
