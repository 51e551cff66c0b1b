//! RFC 9457 `application/problem+json` errors and the HTTP edge every API function shares:
//! JSON bodies in (size-checked, parse errors as 400), JSON or problems out, the correlation
//! id echoed on every response.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::correlation::{self, CorrelationId};

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

    pub fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn into_response(self, correlation_id: &CorrelationId) -> Response<Body> {
        respond(self.status, "application/json", self.body, &self.headers, correlation_id)
    }
}

fn respond(
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

/// The request's JSON body as `T`: 413 above [`MAX_BODY_BYTES`], 400 with serde's message
/// (field, expected type, position) for anything that is not a valid `T`.
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, Problem> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::payload_too_large());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request("the request body must be a JSON object"));
    }
    let invalid = |e: serde_json::Error| Problem::bad_request(format!("invalid JSON body: {e}"));
    let whole = whole_numbers(bytes);
    let bytes = whole.as_deref().unwrap_or(bytes);
    // Straight from the bytes first, for errors with their position (and repeated members
    // refused); then again from the document, where an array is no struct (serde would read
    // `[2]` as `{"quantity": 2}`).
    serde_json::from_slice::<T>(bytes).map_err(invalid)?;
    objects_only::from_value(serde_json::from_slice(bytes).map_err(invalid)?).map_err(invalid)
}

mod objects_only;

/// `text` without the white space at its ends, as the HTTP API's `pattern: \S` reads white
/// space (JSON Schema validators and Python's `\s`): Unicode's White_Space and the four
/// ASCII separators U+001C-U+001F. Blank if nothing is left.
pub fn trim_blank(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// The body with every number of integral value written as an integer (`2.0`, `2.50e1`,
/// `-0.0`), if it has any: JSON Schema counts them as integers, serde's integer fields do
/// not. Rewritten in the text, not through a `Value`, so repeated members stay visible.
fn whole_numbers(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut copied, mut in_string) = (0, 0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b != b'-' && !b.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
            i += 1;
        }
        if let Some(integer) = integral(&bytes[start..i]) {
            let out = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            out.extend_from_slice(&bytes[copied..start]);
            out.extend_from_slice(integer.as_bytes());
            copied = i;
        }
    }
    let mut out = out?;
    out.extend_from_slice(&bytes[copied..]);
    Some(out)
}

/// A JSON number token with a fraction or an exponent, as the integer it equals (`None` if
/// it is not one, is not of integral value, or has more than 40 digits: out of any range).
pub(crate) fn integral(token: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(token).ok()?;
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let valid = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (fraction.is_empty() && exponent == 0 && !unsigned.contains(['e', 'E']))
        || whole.is_empty()
        || (whole.len() > 1 && whole.starts_with('0'))
        || (mantissa.contains('.') && fraction.is_empty())
        || !valid(whole)
        || !valid(fraction)
    {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let point = i32::try_from(whole.len()).ok()?.checked_add(exponent)?;
    if !(0..=40).contains(&point) {
        return (digits.bytes().all(|b| b == b'0')).then(|| "0".to_owned());
    }
    let point = point as usize;
    let (int_part, rest) = if point <= digits.len() {
        (digits[..point].to_owned(), &digits[point..])
    } else {
        (format!("{digits}{}", "0".repeat(point - digits.len())), "")
    };
    if !rest.bytes().all(|b| b == b'0') {
        return None;
    }
    let int_part = int_part.trim_start_matches('0');
    Some(match (int_part.is_empty(), negative) {
        (true, _) => "0".to_owned(),
        (false, true) => format!("-{int_part}"),
        (false, false) => int_part.to_owned(),
    })
}

/// An optional body field that may be left out but not sent as `null`: `null` is a wrong type
/// (docs/api.md: 400), not "absent". Use as `#[serde(default, deserialize_with = "not_null")]`.
pub fn not_null<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    // Through Option, so that every type (enums too) gets this message rather than its own.
    match <Option<T> as serde::Deserialize>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom("null is not a valid value (leave the field out instead)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Quantity {
        quantity: u8,
    }

    fn request(body: &str) -> Request {
        Request::new(Body::Text(body.into()))
    }

    fn cid() -> CorrelationId {
        CorrelationId::parse("c-1").unwrap()
    }

    #[test]
    fn problems_follow_rfc_9457_and_carry_the_correlation_id() {
        let response = Problem::conflict("not enough stock").with("shortages", [("p1", 3)]).into_response(&cid());
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

    #[test]
    fn bad_bodies_are_400_and_big_ones_413() {
        for body in ["", "  ", "{", "[]", r#"{"quantity": "3"}"#, r#"{"quantity": 300}"#, r#"{}"#] {
            let err = json_body::<Quantity>(&request(body)).unwrap_err();
            assert_eq!(err.status, 400, "{body:?}");
        }
        let big = format!(r#"{{"quantity": 1, "pad": "{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert_eq!(json_body::<Quantity>(&request(&big)).unwrap_err().status, 413);
        assert_eq!(json_body::<Quantity>(&request(r#"{"quantity": 3}"#)).unwrap().quantity, 3);
    }

    /// JSON Schema's integers include `2.0` (schemathesis ST202 found `{"quantity": 28.0}` refused).
    #[test]
    fn blank_is_what_the_schemas_white_space_is() {
        assert_eq!(trim_blank(" \t a b \n"), "a b");
        assert_eq!(trim_blank("\u{1c}\u{1f}\u{3000}\u{a0}"), "", "separators and Unicode spaces are blank");
        assert_eq!(trim_blank("\u{200b}"), "\u{200b}", "a zero-width space is not white space");
    }

    #[test]
    fn numbers_of_integral_value_are_integers() {
        for (body, quantity) in [
            (r#"{"quantity": 28.0}"#, 28),
            (r#"{"quantity":2.000}"#, 2),
            (r#"{"quantity": 2.5e1}"#, 25),
            (r#"{"quantity": 250E-1}"#, 25),
            (r#"{"quantity": 0.0}"#, 0),
            (r#"{"quantity": -0.0e3}"#, 0),
        ] {
            assert_eq!(json_body::<Quantity>(&request(body)).map(|q| q.quantity), Ok(quantity), "{body}");
        }
        for body in [
            r#"{"quantity": 2.5}"#,
            r#"{"quantity": 300.0}"#,
            r#"{"quantity": -1.0}"#,
            r#"{"quantity": 1e400}"#,
            r#"{"quantity": 02.0}"#,
            r#"{"quantity": 2.}"#,
            r#"{"quantity": 2.0, "quantity": 3.0}"#,
        ] {
            assert_eq!(json_body::<Quantity>(&request(body)).unwrap_err().status, 400, "{body}");
        }
        // Inside strings nothing changes.
        assert_eq!(whole_numbers(br#"{"a": "2.0", "b\"": "\"3.0"}"#), None);
        assert_eq!(
            whole_numbers(br#"{"a": "x", "n": [1.0, 2, 3.10, 4e2]}"#).unwrap(),
            br#"{"a": "x", "n": [1, 2, 3.10, 400]}"#
        );
        assert_eq!(integral(b"123456789012345678901234567890.0").as_deref(), Some("123456789012345678901234567890"));
    }

    #[test]
    fn an_array_is_not_an_object_at_any_depth() {
        // Found by fuzzing: serde reads a struct from an array of its fields' values.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Lines {
            lines: Vec<Quantity>,
        }
        assert_eq!(json_body::<Quantity>(&request("[3]")).unwrap_err().status, 400);
        assert_eq!(json_body::<Lines>(&request(r#"{"lines": [[3]]}"#)).unwrap_err().status, 400);
        assert_eq!(json_body::<Lines>(&request(r#"{"lines": [{"quantity": 3}]}"#)).unwrap().lines.len(), 1);
        let repeated = json_body::<Quantity>(&request(r#"{"quantity": 3, "quantity": 4}"#)).unwrap_err();
        assert!(repeated.detail.contains("duplicate field"), "{}", repeated.detail);
    }

    #[test]
    fn optional_fields_may_be_left_out_but_not_null() {
        #[derive(Debug, Deserialize)]
        struct Note {
            #[serde(default, deserialize_with = "not_null")]
            text: Option<String>,
        }
        assert_eq!(json_body::<Note>(&request("{}")).unwrap().text, None);
        assert_eq!(json_body::<Note>(&request(r#"{"text": "hi"}"#)).unwrap().text.as_deref(), Some("hi"));
        assert_eq!(json_body::<Note>(&request(r#"{"text": null}"#)).unwrap_err().status, 400);
    }

    #[test]
    fn replies_are_json_with_extra_headers() {
        let response = Reply::json(StatusCode::CREATED, &serde_json::json!({"order_id": "o1"}))
            .header(header::LOCATION, "/orders/o1")
            .into_response(&cid());
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["location"], "/orders/o1");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["x-correlation-id"], "c-1");
    }
}
