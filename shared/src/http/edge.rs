//! The Lambda edge of every HTTP API function: the correlation id in (into the request's
//! extensions, where a handler reads it), a span around the handler, the body's size checked
//! for every route, `Reply` or `Problem` out; nothing the handler does becomes a bare 500.

use std::convert::Infallible;
use std::future::Future;

use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use tracing::Instrument;

use super::problem::{MAX_BODY_BYTES, Problem};
use super::reply::Reply;
use crate::correlation::CorrelationId;
use crate::logging;

/// Runs `handler` once per request, as the function's whole `main` loop.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Request) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Reply, Problem>> + Send,
{
    lambda_http::run(service_fn(|request: Request| handle(&handler, request))).await
}

/// A path parameter of the request, or 404 (the route cannot match without it).
pub fn path_parameter(request: &Request, name: &str) -> Result<String, Problem> {
    request
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| Problem::not_found(format!("missing path parameter {name}")))
}

/// The client's address: API Gateway's `requestContext.http.sourceIp` (the TCP peer on the
/// local stack). A request without one (only a hand-made event) is from "unknown": the
/// throttles that key on it then count such requests together.
pub fn source_ip(request: &Request) -> String {
    match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    }
    .filter(|ip| !ip.is_empty())
    .unwrap_or_else(|| "unknown".to_owned())
}

/// The request's correlation id, as the edge read it (the caller's, or a new one); for a
/// request that did not come through the edge, read from its headers the same way.
pub fn correlation_id(request: &Request) -> CorrelationId {
    request
        .extensions()
        .get::<CorrelationId>()
        .cloned()
        .unwrap_or_else(|| CorrelationId::from_headers(request.headers()))
}

/// One request through `handler`; public so handler tests exercise exactly this path.
pub async fn handle<F, Fut>(handler: &F, mut request: Request) -> Result<Response<Body>, Infallible>
where
    F: Fn(Request) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Reply, Problem>> + Send,
{
    let correlation_id = CorrelationId::from_headers(request.headers());
    request.extensions_mut().insert(correlation_id.clone());
    let request_id = request.lambda_context_ref().map(|context| context.request_id.clone()).unwrap_or_default();
    let span = logging::request_span(&request_id, correlation_id.as_str());
    // Every route, whether it reads its body or not: nobody sends a function more than that.
    let outcome = if request.body().len() > MAX_BODY_BYTES {
        Err(Problem::payload_too_large())
    } else {
        handler(request).instrument(span.clone()).await
    };
    Ok(span.in_scope(|| match outcome {
        Ok(reply) => reply.into_response(&correlation_id),
        Err(problem) => {
            if problem.status.is_server_error() {
                tracing::error!(status = problem.status.as_u16(), detail = %problem.detail, "request failed");
            } else {
                tracing::info!(status = problem.status.as_u16(), detail = %problem.detail, "request rejected");
            }
            problem.into_response(&correlation_id)
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::StatusCode;

    #[tokio::test]
    async fn an_oversized_body_is_413_even_where_the_route_ignores_its_body() {
        let handler = |_: Request| async move { Ok(Reply::ok(&serde_json::json!({}))) };
        let request = |size: usize| Request::new(Body::Text("x".repeat(size)));
        let limit = MAX_BODY_BYTES;
        assert_eq!(handle(&handler, request(limit)).await.unwrap().status(), StatusCode::OK);
        let refused = handle(&handler, request(limit + 1)).await.unwrap();
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(refused.headers()["content-type"], "application/problem+json");
    }

    #[tokio::test]
    async fn replies_and_problems_both_echo_the_callers_correlation_id() {
        let handler = |request: Request| async move {
            // The handler reads the same id the answer echoes.
            assert_eq!(correlation_id(&request).as_str(), "c-42");
            match request.body().as_ref() {
                b"ok" => Ok(Reply::ok(&"fine")),
                _ => Err(Problem::bad_request("nope")),
            }
        };
        for (body, status) in [("ok", StatusCode::OK), ("bad", StatusCode::BAD_REQUEST)] {
            let mut request = Request::new(Body::Text(body.into()));
            request.headers_mut().insert("x-correlation-id", "c-42".parse().unwrap());
            let response = handle(&handler, request).await.unwrap();
            assert_eq!(response.status(), status);
            assert_eq!(response.headers()["x-correlation-id"], "c-42");
        }
    }
}
