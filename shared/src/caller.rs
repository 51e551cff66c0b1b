//! Who is calling an "(auth)" route, as the token authorizer established it.
//!
//! The authorizer (functions/auth) verifies the bearer token once, at the gateway, and
//! passes its verdict to the function as the authorizer context. It always lets the request
//! through, with either the caller or the reason the token was refused, so that every
//! refusal is the contract's 401 problem+json with the correlation id (API Gateway's own
//! 401/403 bodies cannot be shaped for HTTP APIs). Functions therefore read the caller only
//! through [`caller`], which turns a refusal into that 401; they never parse tokens.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde::{Deserialize, Serialize};

use crate::events::Role;
use crate::http::Problem;

/// The authorizer context: a caller, or why there is none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthorizerContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Set when the token was refused: a short reason for the 401's detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<String>,
}

impl AuthorizerContext {
    pub fn caller(user_id: impl Into<String>, role: Role) -> Self {
        Self { user_id: Some(user_id.into()), role: Some(role), rejection: None }
    }

    pub fn rejected(reason: impl Into<String>) -> Self {
        Self { rejection: Some(reason.into()), ..Self::default() }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller has `role`.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.role == role {
            Ok(())
        } else {
            let needed =
                serde_json::to_value(role).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            Err(Problem::forbidden(format!("this needs a {needed} account")))
        }
    }
}

/// The caller of an (auth) route, or the contract's 401.
pub fn caller(request: &Request) -> Result<Caller, Problem> {
    let fields = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.authorizer.as_ref().map(|a| a.fields.clone()),
        _ => None,
    };
    let Some(fields) = fields else {
        // No authorizer ran: a route declared without one. A deployment bug, not the user's.
        tracing::error!("an (auth) route was called without the token authorizer");
        return Err(Problem::internal());
    };
    let context: AuthorizerContext =
        serde_json::from_value(serde_json::Value::Object(fields.into_iter().collect())).unwrap_or_default();
    match context {
        AuthorizerContext { user_id: Some(user_id), role: Some(role), .. } => Ok(Caller { user_id, role }),
        AuthorizerContext { rejection, .. } => {
            Err(Problem::unauthorized(rejection.unwrap_or_else(|| "a valid bearer token is required".into())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::apigw::{ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequestContext};

    fn request_with(context: Option<&AuthorizerContext>) -> Request {
        let mut request_context = ApiGatewayV2httpRequestContext::default();
        if let Some(context) = context {
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            let value = serde_json::to_value(context).unwrap();
            authorizer.fields = value.as_object().unwrap().clone().into_iter().collect();
            request_context.authorizer = Some(authorizer);
        }
        Request::default().with_request_context(RequestContext::ApiGatewayV2(request_context))
    }

    #[test]
    fn a_verified_caller_comes_through() {
        let context = AuthorizerContext::caller("u-1", Role::Seller);
        let caller = caller(&request_with(Some(&context))).unwrap();
        assert_eq!(caller, Caller { user_id: "u-1".into(), role: Role::Seller });
        assert!(caller.require(Role::Seller).is_ok());
        assert_eq!(caller.require(Role::Customer).unwrap_err().status, 403);
    }

    #[test]
    fn a_refused_token_is_a_401_with_the_reason() {
        let problem = caller(&request_with(Some(&AuthorizerContext::rejected("the token has expired")))).unwrap_err();
        assert_eq!(problem.status, 401);
        assert_eq!(problem.detail, "the token has expired");
    }

    #[test]
    fn a_route_without_the_authorizer_is_our_bug() {
        assert_eq!(caller(&request_with(None)).unwrap_err().status, 500);
    }
}
