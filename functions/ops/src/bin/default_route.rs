//! The HTTP API's `$default` route: every request no route matches.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    // No SDK client: logging alone, not the SDK configuration `shared::config::start` loads.
    shared::logging::init();
    let routes = ops::handlers::default_route::Routes::from_env()?;
    shared::http::run(|request| ops::handlers::default_route::unmatched(&routes, request)).await
}
