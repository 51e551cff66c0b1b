//! `GET /.well-known/jwks.json`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let verifier = auth::clients::verifier_from_env()?;
    shared::http::run(|_| async { Ok(auth::handlers::jwks::jwks(&verifier)) }).await
}
