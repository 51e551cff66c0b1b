//! The Lambda edge of the Auth service: event in, domain call, response or problem out.

pub mod authorizer;
pub mod get_user;
pub mod login;
pub mod me;
pub mod register;

use serde::Serialize;
use shared::Problem;

use crate::domain::{Invalid, User};
use crate::store::StoreError;
use crate::tokens::{KeyError, TOKEN_TTL_SECONDS, Tokens};

/// Register's and login's answer (api.md).
#[derive(Debug, Serialize)]
pub struct Session {
    pub user: User,
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

impl Session {
    pub fn start(user: User, tokens: &Tokens) -> Result<Self, Problem> {
        let access_token = tokens.issue(&user, chrono::Utc::now()).map_err(key_failure)?;
        Ok(Self { user, access_token, token_type: "Bearer", expires_in: TOKEN_TTL_SECONDS })
    }
}

impl From<Invalid> for Problem {
    fn from(invalid: Invalid) -> Self {
        Problem::bad_request(invalid.0)
    }
}

pub fn store_failure(error: StoreError) -> Problem {
    match error {
        StoreError::EmailTaken => Problem::conflict("an account with this email address already exists"),
        StoreError::Unavailable(detail) => {
            tracing::error!(%detail, "account store unavailable");
            Problem::unavailable("the account store is unavailable; try again shortly")
        }
    }
}

fn key_failure(error: KeyError) -> Problem {
    tracing::error!(%error, "cannot sign tokens");
    Problem::internal()
}

/// A path parameter of the request, or a 404 (the route cannot match without it).
pub fn path_parameter(request: &lambda_http::Request, name: &str) -> Result<String, Problem> {
    use lambda_http::RequestExt;
    request
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| Problem::not_found(format!("missing path parameter {name}")))
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;

    use lambda_http::Request;

    /// A sample from events/ (as API Gateway sends it) as the request the handler sees.
    pub fn sample_request(name: &str) -> Request {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// `request` with another JSON body.
    pub fn with_body(request: Request, body: &str) -> Request {
        let (parts, _) = request.into_parts();
        Request::from_parts(parts, lambda_http::Body::Text(body.to_owned()))
    }

    /// `request` as if the token authorizer had passed `context`.
    pub fn with_authorizer(request: Request, context: &shared::caller::AuthorizerContext) -> Request {
        use lambda_http::RequestExt;
        use lambda_http::request::RequestContext;
        let Some(RequestContext::ApiGatewayV2(mut context_v2)) = request.request_context_ref().cloned() else {
            panic!("not an HTTP API request");
        };
        let mut authorizer = lambda_http::aws_lambda_events::apigw::ApiGatewayRequestAuthorizer::default();
        let value = serde_json::to_value(context).unwrap();
        authorizer.fields = value.as_object().unwrap().clone().into_iter().collect();
        context_v2.authorizer = Some(authorizer);
        request.with_request_context(RequestContext::ApiGatewayV2(context_v2))
    }

    pub fn body(response: &lambda_http::Response<lambda_http::Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).expect("a JSON body")
    }
}
