//! Service-to-service calls: HTTP through API Gateway's IAM-authorized `/internal/...`
//! routes, SigV4-signed with the function's own credentials, with a timeout, bounded
//! retries with jittered backoff for idempotent calls, a circuit breaker per downstream
//! service, and the caller's correlation id forwarded.
//!
//! The API's base URL is `API_URL` if set, otherwise the SSM parameter named by
//! `API_URL_PARAMETER` (read on first use). A function cannot be given the URL of the API
//! that routes to it directly: CloudFormation would see a circular dependency.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use backon::{ExponentialBuilder, Retryable};
use lambda_http::http::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use crate::breaker::{CircuitBreaker, Permit};
use crate::config::{self, ConfigError};
use crate::correlation::{self, CorrelationId};
use crate::http::Problem;

/// Why a call got no usable answer; the caller answers its own client with 503.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{service} is unavailable: {reason}")]
    Unavailable { service: String, reason: String },
    #[error("{service} answered {status} unexpectedly: {body}")]
    Unexpected { service: String, status: u16, body: String },
}

impl CallError {
    pub fn service(&self) -> &str {
        match self {
            CallError::Unavailable { service, .. } | CallError::Unexpected { service, .. } => service,
        }
    }
}

impl From<CallError> for Problem {
    fn from(error: CallError) -> Self {
        tracing::warn!(%error, "internal call failed");
        Problem::unavailable(format!(
            "the {} service is unavailable; nothing was changed, try again shortly",
            error.service()
        ))
    }
}

/// One answer: the status and the body (4xx answers are answers, not errors).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self, service: &str) -> Result<T, CallError> {
        serde_json::from_slice(&self.body).map_err(|e| CallError::Unexpected {
            service: service.to_owned(),
            status: self.status.as_u16(),
            body: format!("unreadable body ({e}): {}", String::from_utf8_lossy(&self.body)),
        })
    }

    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// This answer as one its caller did not expect from `service`, with the body as sent.
    pub fn unexpected(&self, service: &str) -> CallError {
        CallError::Unexpected {
            service: service.to_owned(),
            status: self.status.as_u16(),
            body: String::from_utf8_lossy(&self.body).into_owned(),
        }
    }
}

/// Tunables, from the environment (with defaults that suit a 10 s function timeout).
#[derive(Debug, Clone)]
pub struct Settings {
    pub timeout: Duration,
    pub retries: usize,
    pub breaker_threshold: u32,
    pub breaker_open_for: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            timeout: Duration::from_millis(config::parsed("INTERNAL_TIMEOUT_MS", 2000)?),
            retries: config::parsed("INTERNAL_RETRIES", 2)?,
            breaker_threshold: config::parsed("CIRCUIT_FAILURE_THRESHOLD", 5)?,
            breaker_open_for: Duration::from_secs(config::parsed("CIRCUIT_OPEN_SECONDS", 30)?),
        })
    }
}

pub struct InternalClient {
    /// Built on first use: its TLS set-up (the root certificates) stays out of cold starts.
    http: OnceCell<reqwest::Client>,
    sdk: aws_config::SdkConfig,
    base_url: OnceCell<String>,
    credentials: Credentials,
    region: String,
    settings: Settings,
    breakers: Mutex<HashMap<String, std::sync::Arc<CircuitBreaker>>>,
}

impl InternalClient {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let settings = Settings::from_env()?;
        let base_url = OnceCell::new();
        if let Ok(url) = config::required("API_URL") {
            let _ = base_url.set(url.trim_end_matches('/').to_owned());
        }
        Ok(Self {
            http: OnceCell::new(),
            sdk: sdk.clone(),
            base_url,
            credentials: crate::sigv4::credentials_from_env()?,
            region: sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into()),
            settings,
            breakers: Mutex::new(HashMap::new()),
        })
    }

    fn breaker(&self, service: &str) -> std::sync::Arc<CircuitBreaker> {
        let mut breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        breakers
            .entry(service.to_owned())
            .or_insert_with(|| {
                std::sync::Arc::new(CircuitBreaker::new(
                    self.settings.breaker_threshold,
                    self.settings.breaker_open_for,
                ))
            })
            .clone()
    }

    async fn base_url(&self, service: &str) -> Result<&str, CallError> {
        let unavailable = |reason: String| CallError::Unavailable { service: service.to_owned(), reason };
        self.base_url
            .get_or_try_init(|| async {
                let name = config::required("API_URL_PARAMETER").map_err(|e| unavailable(e.to_string()))?;
                let ssm = aws_sdk_ssm::Client::new(&self.sdk);
                let found = ssm.get_parameter().name(&name).send().await.map_err(|e| {
                    unavailable(format!("reading {name}: {}", aws_sdk_ssm::error::DisplayErrorContext(e)))
                })?;
                let value =
                    found.parameter().and_then(|p| p.value()).ok_or_else(|| unavailable(format!("{name} is empty")))?;
                Ok(value.trim_end_matches('/').to_owned())
            })
            .await
            .map(String::as_str)
    }

    /// Calls `service` (a name for the breaker and messages) at `path`. `idempotent` calls
    /// are retried on transport errors and 5xx; others are tried once.
    pub async fn call(
        &self,
        service: &str,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        idempotent: bool,
        correlation_id: &CorrelationId,
    ) -> Result<Answer, CallError> {
        let unavailable = |reason: String| CallError::Unavailable { service: service.to_owned(), reason };
        let breaker = self.breaker(service);
        if let Permit::Rejected(left) = breaker.permit() {
            return Err(unavailable(format!("circuit open for another {} ms", left.as_millis())));
        }
        let url = format!("{}{path}", self.base_url(service).await?);
        let body = match body {
            Some(body) => serde_json::to_vec(body).map_err(|e| unavailable(e.to_string()))?,
            None => Vec::new(),
        };
        let attempt = || self.attempt(service, &method, &url, &body, correlation_id);
        let retries = if idempotent { self.settings.retries } else { 0 };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_millis(500))
            .with_max_times(retries)
            .with_jitter();
        let result = attempt.retry(backoff).when(|e: &CallError| matches!(e, CallError::Unavailable { .. })).await;
        match &result {
            Ok(_) => breaker.success(),
            Err(_) => breaker.failure(),
        }
        result
    }

    async fn attempt(
        &self,
        service: &str,
        method: &Method,
        url: &str,
        body: &[u8],
        correlation_id: &CorrelationId,
    ) -> Result<Answer, CallError> {
        let unavailable = |reason: String| CallError::Unavailable { service: service.to_owned(), reason };
        let mut headers = vec![(correlation::HEADER, correlation_id.as_str())];
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        let signed = crate::sigv4::signing_headers(
            method.as_str(),
            url,
            &headers,
            body,
            &self.credentials,
            &self.region,
            SystemTime::now(),
        )
        .map_err(|e| unavailable(e.to_string()))?;
        let http = self
            .http
            .get_or_try_init(|| async { reqwest::Client::builder().timeout(self.settings.timeout).build() })
            .await
            .map_err(|e| unavailable(format!("cannot build the HTTP client: {e}")))?;
        let mut request = http.request(method.clone(), url).body(body.to_vec());
        for (name, value) in headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).chain(signed) {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| unavailable(e.to_string()))?.to_vec();
        if status.is_server_error() {
            return Err(unavailable(format!("answered {status}: {}", String::from_utf8_lossy(&body))));
        }
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A downstream that fails its first `failures` calls with 503, then answers 200.
    async fn downstream(failures: u32) -> (String, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                assert!(
                    headers.get("authorization").is_some_and(|v| v.to_str().unwrap().starts_with("AWS4-HMAC-SHA256"))
                );
                assert_eq!(headers["x-correlation-id"], "c-int");
                if n < failures {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
                } else {
                    (axum::http::StatusCode::OK, r#"{"ok":true}"#)
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, calls)
    }

    fn client(url: &str, threshold: u32) -> InternalClient {
        InternalClient {
            http: OnceCell::new(),
            sdk: aws_config::SdkConfig::builder().build(),
            base_url: OnceCell::new_with(Some(url.to_owned())),
            credentials: Credentials::new("test", "test", None, None, "test"),
            region: "us-east-1".into(),
            settings: Settings {
                timeout: Duration::from_secs(2),
                retries: 2,
                breaker_threshold: threshold,
                breaker_open_for: Duration::from_millis(300),
            },
            breakers: Mutex::new(HashMap::new()),
        }
    }

    fn correlation_id() -> CorrelationId {
        CorrelationId::parse("c-int").unwrap()
    }

    #[tokio::test]
    async fn idempotent_calls_are_retried_and_others_are_not() {
        let (url, calls) = downstream(2).await;
        let client = client(&url, 10);
        let answer = client.call("payment", Method::GET, "/x", None::<&()>, true, &correlation_id()).await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "two retries");

        let (url, calls) = downstream(1).await;
        let client = self::client(&url, 10);
        assert!(client.call("payment", Method::POST, "/x", Some(&1), false, &correlation_id()).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "not idempotent: one try");
    }

    #[tokio::test]
    async fn the_breaker_opens_fails_fast_and_recovers_after_a_probe() {
        let (url, calls) = downstream(2).await;
        let client = client(&url, 2);
        for _ in 0..2 {
            assert!(client.call("seller", Method::POST, "/x", None::<&()>, false, &correlation_id()).await.is_err());
        }
        let fast = client.call("seller", Method::POST, "/x", None::<&()>, false, &correlation_id()).await.unwrap_err();
        assert!(fast.to_string().contains("circuit open"), "{fast}");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the open breaker did not call");
        assert!(
            client.call("order", Method::POST, "/x", None::<&()>, false, &correlation_id()).await.is_ok(),
            "per service"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(
            client.call("seller", Method::POST, "/x", None::<&()>, false, &correlation_id()).await.is_ok(),
            "the probe succeeds"
        );
        assert!(!client.breaker("seller").is_open());
    }
}
