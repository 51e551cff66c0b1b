//! Correlation ids: taken from `X-Correlation-Id` when valid, generated otherwise, echoed on
//! every response, forwarded on internal calls and carried in every event.

use std::fmt;

/// The request/response header that carries the id.
pub const HEADER: &str = "x-correlation-id";

/// 1-64 characters of `[A-Za-z0-9._-]` (docs/api.md, Conventions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CorrelationId(String);

impl CorrelationId {
    /// Accepts `value` only if it matches the contract's pattern.
    pub fn parse(value: &str) -> Option<Self> {
        let valid = (1..=64).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        valid.then(|| Self(value.to_owned()))
    }

    /// A fresh id (a ULID: unique and sortable by time).
    pub fn generate() -> Self {
        Self(ulid::Ulid::generate().to_string())
    }

    /// The caller's id if it is valid, a fresh one otherwise.
    pub fn from_header(value: Option<&str>) -> Self {
        value.and_then(Self::parse).unwrap_or_else(Self::generate)
    }

    /// The id of an incoming HTTP request.
    pub fn from_headers(headers: &lambda_http::http::HeaderMap) -> Self {
        Self::from_header(headers.get(HEADER).and_then(|v| v.to_str().ok()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_are_kept() {
        for id in ["c-123", "a", "A.b_C-9", &"x".repeat(64)] {
            assert_eq!(CorrelationId::from_header(Some(id)).as_str(), id);
        }
    }

    #[test]
    fn invalid_or_missing_ids_are_replaced() {
        for id in [None, Some(""), Some("has space"), Some("ünï"), Some(&*"x".repeat(65))] {
            let got = CorrelationId::from_header(id);
            assert_ne!(Some(got.as_str()), id);
            assert!(CorrelationId::parse(got.as_str()).is_some());
        }
    }
}
