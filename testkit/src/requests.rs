//! Helpers for handler tests: the samples in `events/` as requests, with another body or
//! caller, run through the same HTTP edge the functions use (`shared::http::handle`), so a
//! handler test sees the status, headers and problem+json a caller would.

use std::path::PathBuf;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use shared::caller::AuthorizerContext;
use shared::events::Role;
use shared::http::{Problem, Reply};

/// The repository's `events/` folder (this crate sits one level below the root).
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// A sample (as API Gateway sends it) as the request a handler sees.
pub fn sample(name: &str) -> Request {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `request` with another body.
pub fn with_body(request: Request, body: &str) -> Request {
    let (parts, _) = request.into_parts();
    Request::from_parts(parts, Body::Text(body.to_owned()))
}

/// `request` as if the token authorizer had passed `context`.
pub fn with_authorizer(request: Request, context: &AuthorizerContext) -> Request {
    let Some(RequestContext::ApiGatewayV2(mut v2)) = request.request_context_ref().cloned() else {
        panic!("not an HTTP API request");
    };
    let mut authorizer = lambda_http::aws_lambda_events::apigw::ApiGatewayRequestAuthorizer::default();
    let value = serde_json::to_value(context).expect("serialisable");
    authorizer.fields = value.as_object().expect("an object").clone().into_iter().collect();
    v2.authorizer = Some(authorizer);
    request.with_request_context(RequestContext::ApiGatewayV2(v2))
}

/// `request` from the client address `ip` (API Gateway's `sourceIp`).
pub fn from_address(request: Request, ip: &str) -> Request {
    let Some(RequestContext::ApiGatewayV2(mut v2)) = request.request_context_ref().cloned() else {
        panic!("not an HTTP API request");
    };
    v2.http.source_ip = Some(ip.to_owned());
    request.with_request_context(RequestContext::ApiGatewayV2(v2))
}

/// `request` made by `user_id` with `role`.
pub fn as_caller(request: Request, user_id: &str, role: Role) -> Request {
    with_authorizer(request, &AuthorizerContext::caller(user_id, role))
}

/// `request` with one path parameter set.
pub fn with_path(request: Request, name: &str, value: &str) -> Request {
    request.with_path_parameters(std::collections::HashMap::from([(name.to_owned(), value.to_owned())]))
}

/// `request` with one query string parameter set (the others as they were).
pub fn with_query(request: Request, name: &str, value: &str) -> Request {
    let mut query: std::collections::HashMap<String, String> = request
        .query_string_parameters_ref()
        .map(|q| q.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .unwrap_or_default();
    query.insert(name.to_owned(), value.to_owned());
    request.with_query_string_parameters(query)
}

/// Runs `handler` on `request` through the functions' HTTP edge.
pub async fn call<F, Fut>(handler: &F, request: Request) -> Response<Body>
where
    F: Fn(Request) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Reply, Problem>> + Send,
{
    shared::http::handle(handler, request).await.expect("infallible")
}

/// A response's JSON body.
pub fn body(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).expect("a JSON body")
}

/// The envelope of an SQS sample (`events/sqs-*.json`), as a consumer handles it.
pub fn sqs_envelope(name: &str) -> shared::Envelope {
    let text = std::fs::read_to_string(events_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let event: serde_json::Value = serde_json::from_str(&text).expect("an SQS event");
    serde_json::from_str(event["Records"][0]["body"].as_str().expect("a body")).expect("an envelope")
}
