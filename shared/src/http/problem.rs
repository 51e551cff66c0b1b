//! RFC 9457 `application/problem+json`: every answer that is not a success, with the
//! request's correlation id.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

use super::reply::respond;
use crate::correlation::CorrelationId;

/// The largest request body the API takes (docs/api.md, Conventions: > 64 KiB is 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A problem detail. `kind` becomes the `type` URI `/problems/{kind}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: StatusCode,
    pub kind: Cow<'static, str>,
    pub title: Cow<'static, str>,
    pub detail: String,
    /// Extra members, e.g. `shortages` on a 409 at checkout.
    pub extensions: Map<String, Value>,
    /// Extra response headers, e.g. `Retry-After` on a 429.
    pub headers: Vec<(header::HeaderName, String)>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        kind: impl Into<Cow<'static, str>>,
        title: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind: kind.into(),
            title: title.into(),
            detail: detail.into(),
            extensions: Map::new(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request", detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "service-unavailable", "Service unavailable", detail)
    }
    /// Our bug: the detail is logged, never shown.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "an unexpected error occurred; quote the correlation id when reporting it",
        )
    }

    pub fn with(mut self, member: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.extensions.insert(member.into(), value);
        self
    }

    pub fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A problem from its JSON body (as [`Problem::to_json`] made it, e.g. stored to be
    /// answered again); `None` if `body` is not one.
    pub fn from_json(body: &Value) -> Option<Self> {
        let status = StatusCode::from_u16(u16::try_from(body["status"].as_u64()?).ok()?).ok()?;
        let kind = body["type"].as_str()?.strip_prefix("/problems/")?.to_owned();
        let mut problem = Self::new(status, kind, body["title"].as_str()?.to_owned(), body["detail"].as_str()?);
        for (name, value) in body.as_object()? {
            if !["type", "title", "status", "detail", "correlation_id"].contains(&name.as_str()) {
                problem.extensions.insert(name.clone(), value.clone());
            }
        }
        Some(problem)
    }

    /// The JSON body, with the request's correlation id.
    pub fn to_json(&self, correlation_id: &CorrelationId) -> Value {
        let mut body = self.extensions.clone();
        body.insert("type".into(), format!("/problems/{}", self.kind).into());
        body.insert("title".into(), self.title.to_string().into());
        body.insert("status".into(), self.status.as_u16().into());
        body.insert("detail".into(), self.detail.clone().into());
        body.insert("correlation_id".into(), correlation_id.as_str().into());
        Value::Object(body)
    }

    pub fn into_response(self, correlation_id: &CorrelationId) -> Response<Body> {
        let body = self.to_json(correlation_id).to_string();
        respond(self.status, "application/problem+json", body, &self.headers, correlation_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn correlation_id() -> CorrelationId {
        CorrelationId::parse("c-1").unwrap()
    }

    #[test]
    fn problems_follow_rfc_9457_and_carry_the_correlation_id() {
        let response =
            Problem::conflict("not enough stock").with("shortages", [("p1", 3)]).into_response(&correlation_id());
        assert_eq!(response.status(), 409);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        assert_eq!(response.headers()["x-correlation-id"], "c-1");
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["type"], "/problems/conflict");
        assert_eq!(body["title"], "Conflict");
        assert_eq!(body["status"], 409);
        assert_eq!(body["detail"], "not enough stock");
        assert_eq!(body["correlation_id"], "c-1");
        assert_eq!(body["shortages"][0][1], 3);
    }
}
