//! The HTTP API's `$default` route: every request no route matches.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let routes = ops::default_route::Routes::from_env()?;
    shared::api::run(|request, correlation_id| ops::default_route::unmatched(&routes, request, correlation_id)).await
}
