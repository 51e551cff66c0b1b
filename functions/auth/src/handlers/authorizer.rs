//! The token authorizer of the HTTP API: verifies `Authorization: Bearer <jwt>` once per
//! request and hands the verdict to the function as context (see `shared::caller`).

use aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request};
use shared::caller::AuthorizerContext;

use crate::tokens::Verifier;

pub fn authorize(
    tokens: &Verifier,
    request: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<AuthorizerContext> {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let correlation_id = shared::CorrelationId::from_header(header(shared::correlation::HEADER));
    let request_id = request.request_context.request_id.as_deref().unwrap_or_default();
    let span = shared::logging::request_span(request_id, correlation_id.as_str());
    let context = span.in_scope(|| match tokens.verify_header(header("authorization")) {
        Ok(claims) => AuthorizerContext::caller(claims.sub, claims.role),
        Err(rejection) => {
            tracing::info!(%rejection, "token refused");
            AuthorizerContext::rejected(rejection.to_string())
        }
    });
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    // Always through: the function answers a refusal with the contract's 401 problem+json.
    response.is_authorized = true;
    response.context = context;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use crate::tokens::tests::{signer, user, verifier};

    fn sample() -> ApiGatewayV2CustomAuthorizerV2Request {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/authorizer-request.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_valid_token_becomes_the_caller_and_anything_else_a_rejection() {
        let tokens = verifier();
        let mut request = sample();
        let token = signer().issue(&user(Role::Seller), chrono::Utc::now()).unwrap();
        request.headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        let response = authorize(&tokens, &request);
        assert!(response.is_authorized);
        assert_eq!(response.context, AuthorizerContext::caller("usr_1", Role::Seller));

        request.headers.insert("authorization", "Bearer forged.token.here".parse().unwrap());
        let response = authorize(&tokens, &request);
        assert_eq!(response.context.user_id, None);
        assert_eq!(response.context.rejection.as_deref(), Some("the token is malformed"));

        request.headers.remove("authorization");
        let json = serde_json::to_value(authorize(&tokens, &request)).unwrap();
        assert_eq!(json["isAuthorized"], true);
        assert_eq!(json["context"], serde_json::json!({"rejection": "the Authorization header is missing"}));
    }
}
