//! Configuration from environment variables (set per function in template.yaml) and the
//! AWS SDK configuration.

/// A missing or unusable environment variable; a function fails its init with it.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct ConfigError {
    pub name: String,
    pub problem: String,
}

/// The value of a variable that must be set and not empty.
pub fn required(name: &str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        Ok(_) => Err(ConfigError { name: name.into(), problem: "is empty".into() }),
        Err(_) => Err(ConfigError { name: name.into(), problem: "is not set".into() }),
    }
}

/// The value of an optional variable, or `default`.
pub fn optional(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

/// A variable parsed into `T` (numbers, durations in seconds, ...), or `default` if unset.
pub fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError { name: name.into(), problem: format!("{value:?} is not valid: {e}") }),
        _ => Ok(default),
    }
}

/// A function's start, first thing in every `main`: JSON logs on, then the SDK
/// configuration its clients are built from, with the connection to its table opened.
pub async fn start() -> aws_config::SdkConfig {
    crate::logging::init();
    let sdk = aws().await;
    if let Some(table) = warm_up_table(|name| std::env::var(name).ok()) {
        warm_up(&sdk, table).await;
    }
    sdk
}

/// The table whose DynamoDB connection init opens, if any: the function's own, when it
/// reaches it over TLS (AWS, or an HTTPS endpoint). `make bench` measured the first connection in the
/// first invocation at ~375 ms under 128 MB's CPU share and ~30 ms at 1,024 MB; init runs with
/// burst CPU (docs/decisions.md, 19). A plain-HTTP emulator has no handshake to save.
/// `WARM_UP=false` turns it off (the bench, to measure what it saves).
pub fn warm_up_table(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    if var("WARM_UP").is_some_and(|v| v.trim().eq_ignore_ascii_case("false")) {
        return None;
    }
    let tls = var("AWS_ENDPOINT_URL").is_none_or(|url| url.trim().to_ascii_lowercase().starts_with("https://"));
    var("TABLE_NAME").filter(|t| tls && !t.trim().is_empty())
}

/// How long init waits for the warm-up at most: a slow or unreachable endpoint is the first
/// request's to meet (with its own timeouts and retries), not a reason to stall init.
const WARM_UP_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// One `GetItem` of a key no item has (`WARM-UP`/`WARM-UP`) on the function's own table,
/// through the clients' shared HTTP client, so that its pool keeps the connection for the
/// first invocation. Any answer will do; none is tried again.
async fn warm_up(sdk: &aws_config::SdkConfig, table: String) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let config =
        aws_sdk_dynamodb::config::Builder::from(sdk).retry_config(aws_config::retry::RetryConfig::disabled()).build();
    let get = aws_sdk_dynamodb::Client::from_conf(config)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S("WARM-UP".into()))
        .key("sk", AttributeValue::S("WARM-UP".into()))
        .send();
    if tokio::time::timeout(WARM_UP_WAIT, get).await.is_err() {
        tracing::warn!(wait_ms = WARM_UP_WAIT.as_millis() as u64, "the table did not answer the warm-up in init");
    }
}

/// The SDK configuration: region, credentials and `AWS_ENDPOINT_URL` from the environment,
/// which is how the same binary talks to AWS or to the local emulator. Calls are bounded
/// well inside a function's timeout, so a hung dependency becomes an error we handle.
pub async fn aws() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(1))
        .operation_attempt_timeout(std::time::Duration::from_secs(2))
        .operation_timeout(std::time::Duration::from_secs(5))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .http_client(https_client(trust_roots(|name| std::env::var(name).ok())))
        .load()
        .await
}

/// Which certificates the SDK's TLS trusts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrustRoots {
    /// Amazon Trust Services' roots, compiled in: every AWS service endpoint chains to them.
    Amazon,
    /// The system's store: for an HTTPS endpoint that is not AWS (or `SDK_TRUST_ROOTS=native`).
    Native,
}

/// The SDK's default client loads the whole system certificate store when a client is built
/// (~1 ms on Lambda's AL2023, ~4 ms on Debian, where it walks /etc/ssl/certs): most of a
/// function's init. AWS endpoints only need Amazon's five roots, so we trust just those unless
/// an HTTPS endpoint of someone else's is configured. Plain-HTTP emulators need no roots at all.
pub fn trust_roots(var: impl Fn(&str) -> Option<String>) -> TrustRoots {
    if var("SDK_TRUST_ROOTS").is_some_and(|v| v.eq_ignore_ascii_case("native")) {
        return TrustRoots::Native;
    }
    let custom_https =
        ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_SQS"]
            .iter()
            .filter_map(|name| var(name))
            .any(|url| url.trim().to_ascii_lowercase().starts_with("https://"));
    // China's partition is served under other roots.
    let china = var("AWS_REGION").is_some_and(|region| region.starts_with("cn-"));
    if custom_https || china { TrustRoots::Native } else { TrustRoots::Amazon }
}

const AMAZON_ROOTS: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

fn https_client(roots: TrustRoots) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let store = match roots {
        TrustRoots::Amazon => TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_ROOTS),
        TrustRoots::Native => TrustStore::default(),
    };
    let context = TlsContext::builder().with_trust_store(store).build().expect("a trust store without options");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_names_the_variable_when_missing() {
        let err = required("SHARED_TEST_SURELY_UNSET").unwrap_err();
        assert_eq!(err.to_string(), "environment variable SHARED_TEST_SURELY_UNSET: is not set");
    }

    #[test]
    fn init_opens_the_tables_connection_only_over_tls() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            warm_up_table(move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
        };
        assert_eq!(with(&[("TABLE_NAME", "shop-cart")]).as_deref(), Some("shop-cart"), "AWS: no endpoint set");
        let https = with(&[("TABLE_NAME", "shop-cart"), ("AWS_ENDPOINT_URL", "https://127.0.0.1:4443")]);
        assert_eq!(https.as_deref(), Some("shop-cart"));
        let http = with(&[("TABLE_NAME", "shop-cart"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")]);
        assert_eq!(http, None, "no handshake");
        assert_eq!(with(&[]), None, "no table");
        assert_eq!(with(&[("TABLE_NAME", " ")]), None);
        assert_eq!(with(&[("TABLE_NAME", "shop-cart"), ("WARM_UP", "false")]), None, "turned off");
    }

    #[test]
    fn aws_endpoints_trust_amazon_roots_and_other_https_endpoints_the_system_store() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            trust_roots(move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
        };
        assert_eq!(with(&[]), TrustRoots::Amazon);
        assert_eq!(with(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")]), TrustRoots::Amazon);
        assert_eq!(with(&[("AWS_ENDPOINT_URL", "https://localhost.localstack.cloud:4566")]), TrustRoots::Native);
        assert_eq!(with(&[("AWS_ENDPOINT_URL_SQS", "HTTPS://sqs.example")]), TrustRoots::Native);
        assert_eq!(with(&[("AWS_REGION", "cn-north-1")]), TrustRoots::Native);
        assert_eq!(with(&[("SDK_TRUST_ROOTS", "native")]), TrustRoots::Native);
    }

    #[test]
    fn the_amazon_roots_are_five_valid_certificates() {
        use aws_smithy_runtime_api::client::http::HttpClient;
        use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
        assert_eq!(String::from_utf8_lossy(AMAZON_ROOTS).matches("BEGIN CERTIFICATE").count(), 5);
        // Building a connector parses the roots; a bad one panics here rather than in a function.
        let bag = aws_sdk_dynamodb::config::ConfigBag::base();
        https_client(TrustRoots::Amazon)
            .validate_base_client_config(&RuntimeComponentsBuilder::new("test"), &bag)
            .unwrap();
    }

    #[test]
    fn parsed_falls_back_to_the_default() {
        assert_eq!(parsed("SHARED_TEST_SURELY_UNSET", 7u32).unwrap(), 7);
        assert_eq!(optional("SHARED_TEST_SURELY_UNSET", "x"), "x");
    }
}
