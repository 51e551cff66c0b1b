//! The HTTP API's token authorizer (Lambda, payload 2.0, simple responses).
use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    let sdk = shared::config::aws().await;
    let tokens = auth::signing_key::load(&sdk).await?;
    let tokens = &tokens;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| async move {
        Ok::<_, std::convert::Infallible>(auth::handlers::authorizer::authorize(tokens, &event.payload))
    }))
    .await
}
