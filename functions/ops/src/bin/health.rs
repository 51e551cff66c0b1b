//! `GET /health`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    // No SDK client: logging alone, not the SDK configuration `shared::config::start` loads.
    shared::logging::init();
    shared::http::run(ops::handlers::health::health).await
}
