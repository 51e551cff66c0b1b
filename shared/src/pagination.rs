//! Lists as docs/api.md has them: `?limit=` (1-100, default 20) and an opaque `?cursor=`,
//! answered with `{"items": [...], "next_cursor": string|null}`. The cursor is DynamoDB's
//! `LastEvaluatedKey` (string attributes), base64url-encoded JSON.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::{Request, RequestExt};
use serde::Serialize;

use crate::http::Problem;

pub const DEFAULT_LIMIT: i32 = 20;
pub const MAX_LIMIT: i32 = 100;

/// A page of a list, as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

/// Where a list request starts and how much it wants.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PageRequest {
    pub limit: i32,
    pub start: Option<HashMap<String, AttributeValue>>,
}

/// The `limit` and `cursor` query parameters of a request; 400 when they are not valid.
pub fn page_request(request: &Request) -> Result<PageRequest, Problem> {
    let query = request.query_string_parameters_ref();
    let limit = match query.and_then(|q| q.first("limit")) {
        None => DEFAULT_LIMIT,
        // As JSON Schema reads an integer: `2.0` is 2.
        Some(text) => match crate::http::integral(text.as_bytes()).as_deref().unwrap_or(text).parse::<i32>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
            _ => return Err(Problem::bad_request(format!("limit must be a whole number from 1 to {MAX_LIMIT}"))),
        },
    };
    // An empty cursor (`?cursor=`) asks for no page after another: the first one.
    let start = query.and_then(|q| q.first("cursor")).filter(|c| !c.is_empty()).map(decode_cursor).transpose()?;
    Ok(PageRequest { limit, start })
}

/// The cursor for a DynamoDB `LastEvaluatedKey`.
pub fn encode_cursor(key: &HashMap<String, AttributeValue>) -> String {
    let strings: HashMap<&str, &str> =
        key.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_s().ok()?.as_str()))).collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&strings).unwrap_or_default())
}

/// The answer to a cursor this list did not give out: garbled, edited, or another list's or
/// another user's (all alike, so that the answer tells nothing about other lists).
pub fn bad_cursor() -> Problem {
    Problem::bad_request("cursor is not one this API gave out")
}

pub fn decode_cursor(cursor: &str) -> Result<HashMap<String, AttributeValue>, Problem> {
    let json = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad_cursor())?;
    let strings: HashMap<String, String> = serde_json::from_slice(&json).map_err(|_| bad_cursor())?;
    if strings.is_empty() {
        return Err(bad_cursor());
    }
    Ok(strings.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::query_map::QueryMap;

    fn request(query: &[(&str, &str)]) -> Request {
        let map: HashMap<String, String> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Request::default().with_query_string_parameters(QueryMap::from(map))
    }

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(page_request(&request(&[])).unwrap().limit, 20);
        assert_eq!(page_request(&request(&[("limit", "100")])).unwrap().limit, 100);
        for bad in ["0", "101", "-1", "ten", "1.5"] {
            assert_eq!(page_request(&request(&[("limit", bad)])).unwrap_err().status, 400, "{bad}");
        }
    }

    /// JSON Schema's integers include `2.0`, and an empty `cursor=` is a list's start: both
    /// are what the OpenAPI document allows (schemathesis ST202 found them refused).
    #[test]
    fn an_integral_limit_and_an_empty_cursor_are_accepted() {
        assert_eq!(page_request(&request(&[("limit", "2.0")])).unwrap().limit, 2);
        assert_eq!(page_request(&request(&[("limit", "100.00")])).unwrap().limit, 100);
        assert_eq!(page_request(&request(&[("limit", "1e1")])).unwrap().limit, 10);
        for bad in ["2.5", "101.0", "0.0", " 2", "2.", ".0"] {
            assert_eq!(page_request(&request(&[("limit", bad)])).unwrap_err().status, 400, "{bad}");
        }
        assert_eq!(page_request(&request(&[("cursor", "")])).unwrap(), PageRequest { limit: 20, start: None });
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_400() {
        let key = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("A#1".into())),
            ("sk".to_owned(), AttributeValue::S("x".into())),
        ]);
        let cursor = encode_cursor(&key);
        assert_eq!(page_request(&request(&[("cursor", &cursor)])).unwrap().start, Some(key));
        for bad in ["!!", "e30", "bm90IGpzb24"] {
            assert_eq!(page_request(&request(&[("cursor", bad)])).unwrap_err().status, 400, "{bad}");
        }
    }
}
