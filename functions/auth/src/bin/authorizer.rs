//! The HTTP API's token authorizer (Lambda, payload 2.0, simple responses).
use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = shared::config::start().await;
    let tokens = auth::clients::load_tokens(&sdk).await?;
    let tokens = &tokens;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| async move {
        Ok::<_, std::convert::Infallible>(auth::handlers::authorizer::authorize(tokens, &event.payload))
    }))
    .await
}
