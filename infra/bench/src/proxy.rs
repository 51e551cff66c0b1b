//! A counting proxy between the functions and the emulator: every AWS API call passes through
//! it and is counted by operation (`dynamodb.TransactWriteItems`, `sns.Publish`, ...), so the
//! benchmark can say how many calls a checkout costs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// Calls per operation.
pub type Counts = BTreeMap<String, u64>;

#[derive(Clone)]
pub struct CountingProxy {
    pub url: String,
    counts: Arc<Mutex<Counts>>,
}

struct Forward {
    upstream: String,
    http: reqwest::Client,
    counts: Arc<Mutex<Counts>>,
}

impl CountingProxy {
    /// Listens on an ephemeral local port and forwards everything to `upstream`.
    pub async fn start(upstream: &str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the proxy")?;
        let url = format!("http://{}", listener.local_addr()?);
        let counts = Arc::new(Mutex::new(Counts::new()));
        let forward = Arc::new(Forward {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            counts: counts.clone(),
        });
        let app = axum::Router::new().fallback(forward_request).with_state(forward);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, counts })
    }

    /// The calls counted so far.
    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The calls between two snapshots.
pub fn difference(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .map(|(operation, n)| (operation.clone(), n - before.get(operation).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

async fn forward_request(State(forward): State<Arc<Forward>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let operation = operation(&parts.headers, &body);
    *forward.counts.lock().unwrap_or_else(|e| e.into_inner()).entry(operation).or_default() += 1;

    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut headers = parts.headers.clone();
    headers.remove("host");
    let sent = forward
        .http
        .request(parts.method, format!("{}{path}", forward.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let body = answer.bytes().await.unwrap_or_default();
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

/// `service.Operation`: JSON protocols name it in `X-Amz-Target`, query protocols (SNS) in
/// the form body's `Action`.
fn operation(headers: &HeaderMap, body: &Bytes) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (service, action) = target.split_once('.').unwrap_or(("", target));
        let service = match service {
            s if s.starts_with("DynamoDB") => "dynamodb",
            "AmazonSQS" => "sqs",
            "AmazonSSM" => "ssm",
            "secretsmanager" => "secretsmanager",
            other => other,
        };
        return format!("{service}.{action}");
    }
    let action = form_urlencoded::parse(body)
        .find(|(name, _)| name == "Action")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let service = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|credential| credential.split('/').nth(3))
        .unwrap_or("unknown");
    format!("{service}.{action}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_from_the_target_header_or_the_action() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", "DynamoDB_20120810.TransactWriteItems".parse().unwrap());
        assert_eq!(operation(&headers, &Bytes::new()), "dynamodb.TransactWriteItems");

        let mut headers = HeaderMap::new();
        let auth = "AWS4-HMAC-SHA256 Credential=test/20261126/us-east-1/sns/aws4_request, SignedHeaders=host";
        headers.insert("authorization", auth.parse().unwrap());
        assert_eq!(operation(&headers, &Bytes::from("Action=Publish&Version=2010-03-31")), "sns.Publish");
    }

    #[test]
    fn differences_keep_only_what_happened_in_between() {
        let before = Counts::from([("a".to_owned(), 2), ("b".to_owned(), 1)]);
        let after = Counts::from([("a".to_owned(), 5), ("b".to_owned(), 1), ("c".to_owned(), 1)]);
        assert_eq!(difference(&before, &after), Counts::from([("a".to_owned(), 3), ("c".to_owned(), 1)]));
    }
}
