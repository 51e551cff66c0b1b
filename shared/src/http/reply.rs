//! The successful answers: JSON with a status and extra headers, with the request's
//! correlation id, as problems carry it too.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::correlation::{self, CorrelationId};

/// A successful answer: status, JSON body and extra headers (e.g. `Location`).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    pub headers: Vec<(header::HeaderName, String)>,
}

impl Reply {
    pub fn json(status: StatusCode, body: &impl Serialize) -> Self {
        match serde_json::to_string(body) {
            Ok(body) => Self { status, body, headers: Vec::new() },
            // Our own types always serialise; should one not, the client still gets JSON.
            Err(_) => Self { status: StatusCode::INTERNAL_SERVER_ERROR, body: "{}".into(), headers: Vec::new() },
        }
    }

    pub fn ok(body: &impl Serialize) -> Self {
        Self::json(StatusCode::OK, body)
    }

    /// 204: done, nothing to say (no body, no content type).
    pub fn no_content() -> Self {
        Self { status: StatusCode::NO_CONTENT, body: String::new(), headers: Vec::new() }
    }

    pub fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn into_response(self, correlation_id: &CorrelationId) -> Response<Body> {
        let mut response = respond(self.status, "application/json", self.body, &self.headers, correlation_id);
        if response.status() == StatusCode::NO_CONTENT {
            response.headers_mut().remove(header::CONTENT_TYPE);
        }
        response
    }
}

pub(super) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: String,
    headers: &[(header::HeaderName, String)],
    correlation_id: &CorrelationId,
) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let map = response.headers_mut();
    map.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A valid correlation id is always a valid header value.
    if let Ok(value) = HeaderValue::from_str(correlation_id.as_str()) {
        map.insert(correlation::HEADER, value);
    }
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.append(name.clone(), value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn correlation_id() -> CorrelationId {
        CorrelationId::parse("c-1").unwrap()
    }

    #[test]
    fn replies_are_json_with_extra_headers() {
        let response = Reply::json(StatusCode::CREATED, &serde_json::json!({"order_id": "o1"}))
            .header(header::LOCATION, "/orders/o1")
            .into_response(&correlation_id());
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["location"], "/orders/o1");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["x-correlation-id"], "c-1");
    }
}
