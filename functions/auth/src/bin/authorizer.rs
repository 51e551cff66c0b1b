//! The HTTP API's token authorizer (Lambda, payload 2.0, simple responses). Its keys come
//! from its environment: no network call before the first request, nor in any.
use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::logging::init();
    let verifier = auth::clients::verifier_from_env()?;
    let verifier = &verifier;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| async move {
        Ok::<_, std::convert::Infallible>(auth::handlers::authorizer::authorize(verifier, &event.payload))
    }))
    .await
}
