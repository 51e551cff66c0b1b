//! Stripe: the payment provider of the functions, through a small typed client of the five
//! calls Payment makes (over the workspace's reqwest; a Stripe SDK crate would carry every
//! other resource of the API into each binary). Locally the same client talks to
//! localstripe (infra/localstripe), which `STRIPE_API_BASE` points at.
//!
//! - authorize: create and confirm a PaymentIntent with `capture_method=manual`, whose id is
//!   the [`GatewayRef`]; settle: capture it; void: cancel it; refund: a Refund of it.
//! - Every POST carries `Idempotency-Key: {payment_id}:{operation}`: Stripe answers a key it
//!   has seen with its first answer. localstripe ignores the header, so a resumed
//!   authorization first looks for the payment's PaymentIntent (Search API, by
//!   `metadata['payment_id']`), and a capture, cancel or refund that Stripe refuses because
//!   it was done already is recognised as done.
//! - No answer, a 5xx, a 429 or an unreadable one is [`GatewayDown`]: maybe done, so the
//!   move stays claimed and is resumed under the same key.
//!
//! The secret key and the webhook secret are one Secrets Manager secret ([`StripeSecrets`]),
//! read on first use.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use lambda_http::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use shared::config::{self, ConfigError};
use tokio::sync::{Mutex, OnceCell};

use super::{Authorization, GatewayDown, GatewayRef, PaymentGateway, Refusal};

/// Stripe's API, unless `STRIPE_API_BASE` says otherwise (localstripe on the local stack).
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The API version every call is made under, so the shapes read here do not change when the
/// account's default version is upgraded.
const API_VERSION: &str = "2024-06-20";

/// One call to Stripe: connecting, and the whole exchange. An authorization is at most two
/// calls and a capture or cancel a call and a re-read, so a move stays well inside a
/// function's 10 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const CALL_TIMEOUT: Duration = Duration::from_millis(2500);

// ---------------------------------------------------------------------------------------
// Secrets

/// The secret's value: `{"secret_key": "sk_...", "webhook_secret": "whsec_..."}`. The
/// webhook secret may be added later (Stripe shows it once the endpoint is registered, which
/// needs the deployed API's URL).
#[derive(Clone, Deserialize)]
struct Keys {
    secret_key: String,
    #[serde(default)]
    webhook_secret: Option<String>,
}

enum Source {
    SecretsManager { client: aws_sdk_secretsmanager::Client, name: String },
    Fixed,
}

/// Stripe's secret key and webhook secret, from the Secrets Manager secret named by
/// `STRIPE_SECRET_NAME`: read on first use (no network call while a function starts), then
/// kept for the life of the process. A failed read is not kept: the next call tries again.
pub struct StripeSecrets {
    source: Source,
    keys: Mutex<Option<Arc<Keys>>>,
}

impl std::fmt::Debug for StripeSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match &self.source {
            Source::SecretsManager { name, .. } => name.as_str(),
            Source::Fixed => "(fixed)",
        };
        f.debug_struct("StripeSecrets").field("secret", &name).finish_non_exhaustive()
    }
}

impl StripeSecrets {
    /// Reads `STRIPE_SECRET_NAME`; nothing is fetched yet.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self::in_secrets_manager(aws_sdk_secretsmanager::Client::new(sdk), config::required("STRIPE_SECRET_NAME")?))
    }

    pub fn in_secrets_manager(client: aws_sdk_secretsmanager::Client, name: impl Into<String>) -> Self {
        Self { source: Source::SecretsManager { client, name: name.into() }, keys: Mutex::new(None) }
    }

    /// Known values, for tests.
    pub fn fixed(secret_key: &str, webhook_secret: &str) -> Self {
        let keys = Keys { secret_key: secret_key.into(), webhook_secret: Some(webhook_secret.into()) };
        Self { source: Source::Fixed, keys: Mutex::new(Some(Arc::new(keys))) }
    }

    /// The API's secret key (`sk_...`).
    pub async fn secret_key(&self) -> Result<String, GatewayDown> {
        Ok(self.keys(false).await?.secret_key.clone())
    }

    /// The secret that signs the webhooks Stripe sends us (`whsec_...`).
    pub async fn webhook_secret(&self) -> Result<String, GatewayDown> {
        self.keys(true).await?.webhook_secret.clone().ok_or_else(|| self.unreadable("it has no webhook_secret"))
    }

    /// The kept keys, read first if there are none yet, or if the webhook secret is wanted and
    /// was not there when they were read (it is added after the first deploy).
    async fn keys(&self, webhook_secret: bool) -> Result<Arc<Keys>, GatewayDown> {
        let mut kept = self.keys.lock().await;
        if let Some(keys) = kept.as_ref().filter(|k| !webhook_secret || k.webhook_secret.is_some()) {
            return Ok(keys.clone());
        }
        let Source::SecretsManager { client, name } = &self.source else {
            return Err(self.unreadable("it has no value"));
        };
        let found = client.get_secret_value().secret_id(name).send().await.map_err(|e| {
            tracing::error!(secret = %name, error = %DisplayErrorContext(&e), "cannot read the Stripe secret");
            GatewayDown(format!("cannot read the Stripe secret {name}: {}", DisplayErrorContext(&e)))
        })?;
        let text = found.secret_string().ok_or_else(|| self.unreadable("it has no string value"))?;
        // The value is never quoted in an error: it is the key.
        let keys: Keys = serde_json::from_str(text)
            .map_err(|_| self.unreadable(r#"it is not {"secret_key": ..., "webhook_secret": ...}"#))?;
        let keys = Arc::new(keys);
        *kept = Some(keys.clone());
        Ok(keys)
    }

    fn unreadable(&self, why: &str) -> GatewayDown {
        let name = match &self.source {
            Source::SecretsManager { name, .. } => name.as_str(),
            Source::Fixed => "(fixed)",
        };
        tracing::error!(secret = %name, why, "the Stripe secret is not usable");
        GatewayDown(format!("the Stripe secret {name} is not usable: {why}"))
    }
}

// ---------------------------------------------------------------------------------------
// The API

/// One request to Stripe's API: a POST with a form body and its idempotency key, or a GET
/// with a query.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub method: &'a Method,
    /// From `/v1/...`.
    pub path: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub params: &'a [(&'a str, &'a str)],
}

/// How the adapter reaches Stripe: [`Https`] in the functions; the money simulation puts its
/// model of Stripe here, so that it runs this adapter's code.
pub trait Transport: Send + Sync {
    /// A 2xx or 4xx answer with its JSON body. No answer, a 5xx, a 429 or an unreadable answer
    /// is [`GatewayDown`]: maybe done.
    fn send(&self, call: Call<'_>) -> impl Future<Output = Result<(StatusCode, Value), GatewayDown>> + Send;
}

/// Stripe's API (or localstripe's) at `api_base` over HTTPS, with the key from `secrets`.
pub struct Https {
    api_base: String,
    secrets: Arc<StripeSecrets>,
    /// Built on first use: its TLS set-up (the root certificates) stays out of cold starts.
    http: OnceCell<reqwest::Client>,
}

impl std::fmt::Debug for Https {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Https").field("api_base", &self.api_base).finish_non_exhaustive()
    }
}

impl Transport for Https {
    async fn send(&self, call: Call<'_>) -> Result<(StatusCode, Value), GatewayDown> {
        let Call { method, path, idempotency_key, params } = call;
        let down = |why: String| {
            tracing::warn!(call = %format!("{method} {path}"), why, "Stripe did not answer");
            GatewayDown(format!("{method} {path}: {why}"))
        };
        let http = self
            .http
            .get_or_try_init(|| async {
                reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).timeout(CALL_TIMEOUT).build()
            })
            .await
            .map_err(|e| down(format!("cannot build the HTTP client: {}", chain(&e))))?;
        let mut authorization =
            reqwest::header::HeaderValue::try_from(format!("Bearer {}", self.secrets.secret_key().await?))
                .map_err(|_| down("the secret key is not a header value".into()))?;
        authorization.set_sensitive(true);
        let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        let url = format!("{}{path}", self.api_base);
        let mut request = if *method == Method::POST {
            http.post(url).header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(encoded)
        } else if params.is_empty() {
            http.request(method.clone(), url)
        } else {
            http.request(method.clone(), format!("{url}?{encoded}"))
        };
        request = request.header(reqwest::header::AUTHORIZATION, authorization).header("Stripe-Version", API_VERSION);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.map_err(|e| down(chain(&e)))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| down(chain(&e)))?;
        let text = || String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(down(format!("answered {status}: {}", text())));
        }
        let body: Value =
            serde_json::from_slice(&bytes).map_err(|_| down(format!("answered {status} with no JSON: {}", text())))?;
        if !status.is_success() && !status.is_client_error() {
            return Err(down(format!("answered {status}")));
        }
        Ok((status, body))
    }
}

/// The payment port over Stripe's API, reached through `T`.
pub struct StripeGateway<T = Https> {
    transport: T,
}

impl<T: std::fmt::Debug> std::fmt::Debug for StripeGateway<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeGateway").field("transport", &self.transport).finish()
    }
}

/// A PaymentIntent, as far as Payment reads one.
#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
    #[serde(default)]
    last_payment_error: Option<ApiError>,
    #[serde(default)]
    cancellation_reason: Option<String>,
}

/// Stripe's `error` object (`{"error": {...}}`), or a PaymentIntent's `last_payment_error`.
#[derive(Debug, Default, Deserialize)]
struct ApiError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl ApiError {
    /// What a decline is stored and shown as: the decline code if Stripe gave one.
    fn decline(&self) -> String {
        self.decline_code.clone().or_else(|| self.code.clone()).unwrap_or_else(|| "card_declined".into())
    }
}

/// One answer that is not an outage: a 2xx or a 4xx, with its JSON body.
struct Answer {
    status: StatusCode,
    body: Value,
    /// What was asked, for messages.
    call: String,
}

impl Answer {
    fn error(&self) -> ApiError {
        serde_json::from_value(self.body["error"].clone()).unwrap_or_default()
    }

    fn code(&self) -> Option<String> {
        self.error().code
    }

    fn payment_intent(&self) -> Result<PaymentIntent, GatewayDown> {
        serde_json::from_value(self.body.clone())
            .map_err(|e| GatewayDown(format!("{} answered {} with no PaymentIntent: {e}", self.call, self.status)))
    }

    /// This answer as one we cannot act on: maybe done, so left to a retry (and a person).
    fn unexpected(&self) -> GatewayDown {
        let error = self.error();
        tracing::error!(call = %self.call, status = %self.status, code = ?error.code, message = ?error.message, "unexpected answer from Stripe");
        GatewayDown(format!(
            "{} answered {} ({}: {})",
            self.call,
            self.status,
            error.code.as_deref().unwrap_or("no code"),
            error.message.as_deref().unwrap_or("no message")
        ))
    }
}

/// How a token is given to Stripe: a token (`tok_...`, from Stripe.js or a test token) as
/// `payment_method_data[card][token]`, a PaymentMethod (`pm_...`) as `payment_method`.
#[derive(Debug, PartialEq)]
enum PaymentMethod<'a> {
    Token(&'a str),
    Method(&'a str),
}

fn payment_method(token: &str) -> Option<PaymentMethod<'_>> {
    let id_like = |rest: &str| {
        !rest.is_empty() && token.len() <= 255 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    match () {
        _ if token.strip_prefix("tok_").is_some_and(id_like) => Some(PaymentMethod::Token(token)),
        _ if token.strip_prefix("pm_").is_some_and(id_like) => Some(PaymentMethod::Method(token)),
        _ => None,
    }
}

/// The PaymentIntent id a reference holds, checked before it goes into a path.
fn intent_id(reference: &GatewayRef) -> Result<&str, GatewayDown> {
    let id = reference.0.as_str();
    match id.strip_prefix("pi_") {
        Some(rest) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => Ok(id),
        _ => Err(GatewayDown(format!("{id:?} is not a PaymentIntent id"))),
    }
}

/// An error and the errors under it, as one line (reqwest's own message omits its causes).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What an authorization came to, from its PaymentIntent.
fn authorized(intent: &PaymentIntent) -> Result<Result<GatewayRef, Refusal>, GatewayDown> {
    match intent.status.as_str() {
        // `succeeded`: captured already (only if the account captures on its own).
        "requires_capture" | "succeeded" => Ok(Ok(GatewayRef(intent.id.clone()))),
        "requires_payment_method" => Ok(Err(Refusal::Declined(
            intent.last_payment_error.as_ref().map(ApiError::decline).unwrap_or_else(|| "card_declined".into()),
        ))),
        // 3-D Secure wanted: nobody is there to authenticate, and nothing is held.
        "requires_action" => Ok(Err(Refusal::Declined("authentication_required".into()))),
        "canceled" => Ok(Err(Refusal::Declined("canceled".into()))),
        other => Err(GatewayDown(format!("PaymentIntent {} is {other}", intent.id))),
    }
}

impl StripeGateway {
    /// `STRIPE_API_BASE` (default Stripe's) and the secret of `STRIPE_SECRET_NAME`; nothing is
    /// fetched yet.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(&config::optional("STRIPE_API_BASE", DEFAULT_API_BASE), Arc::new(StripeSecrets::from_env(sdk)?)))
    }

    pub fn new(api_base: &str, secrets: Arc<StripeSecrets>) -> Self {
        Self::over(Https { api_base: api_base.trim_end_matches('/').to_owned(), secrets, http: OnceCell::new() })
    }

    pub async fn webhook_secret(&self) -> Result<String, GatewayDown> {
        self.transport.secrets.webhook_secret().await
    }
}

impl<T: Transport> StripeGateway<T> {
    pub fn over(transport: T) -> Self {
        Self { transport }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// One call, its answer named for messages.
    async fn call(
        &self,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
        params: &[(&str, &str)],
    ) -> Result<Answer, GatewayDown> {
        let (status, body) = self.transport.send(Call { method: &method, path, idempotency_key, params }).await?;
        Ok(Answer { status, body, call: format!("{method} {path}") })
    }

    /// The payment id a PaymentIntent names in its metadata: `None` if it names none, or if
    /// Stripe knows no such PaymentIntent (another account's: another stack's localstripe).
    pub async fn payment_of(&self, id: &str) -> Result<Option<String>, GatewayDown> {
        let answer = self.call(Method::GET, &format!("/v1/payment_intents/{id}"), None, &[]).await?;
        match answer.status {
            status if status.is_success() => {
                let named = answer.body["metadata"]["payment_id"].as_str().filter(|id| !id.is_empty());
                Ok(named.map(str::to_owned))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(answer.unexpected()),
        }
    }

    async fn retrieve(&self, id: &str) -> Result<PaymentIntent, GatewayDown> {
        let answer = self.call(Method::GET, &format!("/v1/payment_intents/{id}"), None, &[]).await?;
        if !answer.status.is_success() {
            return Err(answer.unexpected());
        }
        answer.payment_intent()
    }

    /// The PaymentIntent an earlier attempt made for this payment, if one did. Without the
    /// Search API (404, or a refusal) there is nothing to find: the create that follows has the
    /// earlier attempt's key, which Stripe answers with the earlier answer.
    async fn find(&self, payment_id: &str) -> Result<Option<PaymentIntent>, GatewayDown> {
        let query = format!("metadata['payment_id']:'{}'", payment_id.replace('\'', "\\'"));
        let answer = self.call(Method::GET, "/v1/payment_intents/search", None, &[("query", &query)]).await?;
        if !answer.status.is_success() {
            tracing::warn!(%payment_id, status = %answer.status, "no PaymentIntent search; creating under the same key");
            return Ok(None);
        }
        let mut found: Vec<PaymentIntent> = serde_json::from_value(answer.body["data"].clone())
            .map_err(|e| GatewayDown(format!("{} answered no list of PaymentIntents: {e}", answer.call)))?;
        // Several only if something made more than one: the one that holds money wins.
        let holding = found.iter().position(|p| matches!(p.status.as_str(), "requires_capture" | "succeeded"));
        Ok(match holding {
            Some(at) => Some(found.swap_remove(at)),
            None => found.into_iter().next(),
        })
    }
}

/// All of one port call (the secret, a look-up, the call, a re-read), whatever each part
/// takes: inside a function's 10 s with room for the store's writes around it. Given up
/// half-way it is "maybe done", as any call without an answer.
const MOVE_BUDGET: Duration = Duration::from_secs(6);

async fn within<T>(what: &str, work: impl Future<Output = Result<T, GatewayDown>>) -> Result<T, GatewayDown> {
    tokio::time::timeout(MOVE_BUDGET, work)
        .await
        .unwrap_or_else(|_| Err(GatewayDown(format!("{what}: no answer from Stripe within {MOVE_BUDGET:?}"))))
}

impl<T: Transport> PaymentGateway for StripeGateway<T> {
    async fn authorize(&self, key: &str, ask: &Authorization<'_>) -> Result<Result<GatewayRef, Refusal>, GatewayDown> {
        within("authorize", self.create_and_confirm(key, ask)).await
    }

    async fn void(&self, key: &str, reference: &GatewayRef) -> Result<(), GatewayDown> {
        within("void", self.cancel(key, reference)).await
    }

    async fn settle(&self, key: &str, reference: &GatewayRef, _token: &str) -> Result<Result<(), String>, GatewayDown> {
        within("capture", self.capture(key, reference)).await
    }

    async fn refund(&self, key: &str, reference: &GatewayRef, amount_cents: u64) -> Result<(), GatewayDown> {
        within("refund", self.refund_intent(key, reference, amount_cents)).await
    }
}

/// The port's calls, each as Stripe answers it.
impl<T: Transport> StripeGateway<T> {
    /// Creates and confirms a PaymentIntent with manual capture; a resumed authorization
    /// first takes the one an earlier attempt made.
    async fn create_and_confirm(
        &self,
        key: &str,
        ask: &Authorization<'_>,
    ) -> Result<Result<GatewayRef, Refusal>, GatewayDown> {
        let Some(method) = payment_method(ask.token) else {
            return Ok(Err(Refusal::InvalidToken));
        };
        if ask.resumed
            && let Some(earlier) = self.find(ask.payment_id).await?
        {
            tracing::info!(payment_id = %ask.payment_id, payment_intent = %earlier.id, status = %earlier.status, "resumed an earlier authorization");
            return authorized(&earlier);
        }
        let amount = ask.amount_cents.to_string();
        let currency = ask.currency.to_ascii_lowercase();
        let mut form = vec![
            ("amount", amount.as_str()),
            ("currency", currency.as_str()),
            ("capture_method", "manual"),
            ("confirm", "true"),
            // Cards only: no redirecting methods, so no `return_url` is needed to confirm.
            ("payment_method_types[]", "card"),
            ("metadata[payment_id]", ask.payment_id),
            ("metadata[order_id]", ask.order_id),
        ];
        match method {
            PaymentMethod::Token(token) => {
                form.extend([("payment_method_data[type]", "card"), ("payment_method_data[card][token]", token)]);
            }
            PaymentMethod::Method(id) => form.push(("payment_method", id)),
        }
        let answer = self.call(Method::POST, "/v1/payment_intents", Some(key), &form).await?;
        let code = answer.code();
        match answer.status {
            status if status.is_success() => authorized(&answer.payment_intent()?),
            StatusCode::PAYMENT_REQUIRED => Ok(Err(Refusal::Declined(answer.error().decline()))),
            StatusCode::NOT_FOUND => Ok(Err(Refusal::InvalidToken)),
            StatusCode::BAD_REQUEST if code.as_deref() == Some("resource_missing") => Ok(Err(Refusal::InvalidToken)),
            // The same key with other parameters: our bug, never the customer's decline.
            StatusCode::BAD_REQUEST if code.as_deref() == Some("idempotency_error") => Err(answer.unexpected()),
            // Refused for good (an amount below Stripe's minimum, ...): nothing is held.
            StatusCode::BAD_REQUEST => Ok(Err(Refusal::Declined(code.unwrap_or_else(|| "invalid_request".into())))),
            // 401/403 (the key), 409 (the same key in flight): maybe later.
            _ => Err(answer.unexpected()),
        }
    }

    async fn cancel(&self, key: &str, reference: &GatewayRef) -> Result<(), GatewayDown> {
        let id = intent_id(reference)?;
        let answer = self.call(Method::POST, &format!("/v1/payment_intents/{id}/cancel"), Some(key), &[]).await?;
        if answer.status.is_success() {
            return Ok(());
        }
        if answer.status != StatusCode::BAD_REQUEST {
            return Err(answer.unexpected());
        }
        // payment_intent_unexpected_state: canceled already is our earlier cancel whose answer
        // was lost; anything else is left claimed for a person to look at.
        match self.retrieve(id).await?.status.as_str() {
            "canceled" => Ok(()),
            _ => Err(answer.unexpected()),
        }
    }

    async fn capture(&self, key: &str, reference: &GatewayRef) -> Result<Result<(), String>, GatewayDown> {
        let id = intent_id(reference)?;
        let answer = self.call(Method::POST, &format!("/v1/payment_intents/{id}/capture"), Some(key), &[]).await?;
        if answer.status.is_success() {
            return Ok(Ok(()));
        }
        let code = answer.code();
        match answer.status {
            // The authorization expired (Stripe cancels uncaptured PaymentIntents after ~7 days).
            StatusCode::BAD_REQUEST if code.as_deref() == Some("charge_expired_for_capture") => {
                Ok(Err("charge_expired_for_capture".into()))
            }
            StatusCode::PAYMENT_REQUIRED => Ok(Err(answer.error().decline())),
            // payment_intent_unexpected_state: decided by what the PaymentIntent is now.
            StatusCode::BAD_REQUEST => {
                let intent = self.retrieve(id).await?;
                match intent.status.as_str() {
                    // Our earlier capture, whose answer was lost.
                    "succeeded" => Ok(Ok(())),
                    "canceled" => Ok(Err(intent.cancellation_reason.unwrap_or_else(|| "canceled".into()))),
                    _ => Err(answer.unexpected()),
                }
            }
            _ => Err(answer.unexpected()),
        }
    }

    async fn refund_intent(&self, key: &str, reference: &GatewayRef, amount_cents: u64) -> Result<(), GatewayDown> {
        let id = intent_id(reference)?;
        let amount = amount_cents.to_string();
        let form = [("payment_intent", id), ("amount", amount.as_str())];
        let answer = self.call(Method::POST, "/v1/refunds", Some(key), &form).await?;
        match answer.code().as_deref() {
            _ if answer.status.is_success() => Ok(()),
            // Our earlier refund, whose answer was lost.
            Some("charge_already_refunded") if answer.status == StatusCode::BAD_REQUEST => Ok(()),
            _ => Err(answer.unexpected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as Log;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A request as the fake Stripe got it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        query: Vec<(String, String)>,
        headers: axum::http::HeaderMap,
        form: Vec<(String, String)>,
    }

    impl Seen {
        fn field(&self, name: &str) -> Option<&str> {
            self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }
    }

    type Script = Arc<dyn Fn(&Seen) -> (u16, String) + Send + Sync>;

    /// An HTTP server that answers with `script` and logs what it got.
    async fn server(script: Script) -> (String, Arc<Log<Vec<Seen>>>) {
        let log = Arc::new(Log::new(Vec::new()));
        let seen_log = log.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (log, script) = (seen_log.clone(), script.clone());
            async move {
                let (parts, body) = request.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let query = parts.uri.query().unwrap_or("").as_bytes();
                let seen = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    query: form_urlencoded::parse(query).into_owned().collect(),
                    headers: parts.headers,
                    form: form_urlencoded::parse(&bytes).into_owned().collect(),
                };
                let (status, body) = script(&seen);
                log.lock().unwrap().push(seen);
                (axum::http::StatusCode::from_u16(status).unwrap(), body)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, log)
    }

    /// A fake Stripe answering with `script`, and the adapter pointed at it.
    async fn stripe(
        script: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static,
    ) -> (StripeGateway, Arc<Log<Vec<Seen>>>) {
        let (url, log) = server(Arc::new(script)).await;
        (StripeGateway::new(&url, Arc::new(StripeSecrets::fixed("sk_test_x", "whsec_x"))), log)
    }

    fn intent(id: &str, status: &str) -> String {
        serde_json::json!({"id": id, "object": "payment_intent", "status": status, "latest_charge": {"id": "ch_1"}})
            .to_string()
    }

    fn error(code: &str, extra: Value) -> String {
        let mut error = serde_json::json!({"type": "invalid_request_error", "code": code, "message": "m"});
        error.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::json!({ "error": error }).to_string()
    }

    fn ask<'a>(token: &'a str, resumed: bool) -> Authorization<'a> {
        Authorization { payment_id: "pay_1", order_id: "ord_1", token, amount_cents: 2500, currency: "USD", resumed }
    }

    fn pi(id: &str) -> GatewayRef {
        GatewayRef(id.into())
    }

    #[tokio::test]
    async fn an_authorization_creates_and_confirms_a_manual_payment_intent_under_its_key() {
        let (gateway, log) = stripe(|_| (200, intent("pi_1", "requires_capture"))).await;
        assert_eq!(gateway.authorize("pay_1:authorize", &ask("tok_visa", false)).await, Ok(Ok(pi("pi_1"))));
        let seen = log.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "a first attempt looks nothing up: {seen:?}");
        let create = &seen[0];
        assert_eq!((create.method.as_str(), create.path.as_str()), ("POST", "/v1/payment_intents"));
        assert_eq!(create.header("authorization"), Some("Bearer sk_test_x"));
        assert_eq!(create.header("idempotency-key"), Some("pay_1:authorize"));
        assert_eq!(create.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(create.header("stripe-version"), Some(API_VERSION));
        for (name, value) in [
            ("amount", "2500"),
            ("currency", "usd"),
            ("capture_method", "manual"),
            ("confirm", "true"),
            ("metadata[payment_id]", "pay_1"),
            ("metadata[order_id]", "ord_1"),
            ("payment_method_data[type]", "card"),
            ("payment_method_data[card][token]", "tok_visa"),
        ] {
            assert_eq!(create.field(name), Some(value), "{name}");
        }
        assert_eq!(create.field("payment_method"), None);

        assert_eq!(gateway.authorize("k", &ask("pm_card_visa", false)).await, Ok(Ok(pi("pi_1"))));
        let create = log.lock().unwrap()[1].clone();
        assert_eq!(create.field("payment_method"), Some("pm_card_visa"));
        assert_eq!(create.field("payment_method_data[type]"), None);
    }

    #[tokio::test]
    async fn declines_carry_stripes_decline_code_and_unknown_tokens_are_invalid() {
        let (gateway, log) = stripe(|seen| match seen.field("payment_method_data[card][token]") {
            Some("tok_chargeDeclined") => (
                402,
                error("card_declined", serde_json::json!({"type": "card_error", "decline_code": "insufficient_funds"})),
            ),
            // localstripe's stock decline: no decline_code.
            Some("tok_bare") => (402, error("card_declined", serde_json::json!({}))),
            _ => (400, error("resource_missing", serde_json::json!({"param": "payment_method_data[card][token]"}))),
        })
        .await;
        let gateway = &gateway;
        let refused = |token| async move { gateway.authorize("k", &ask(token, false)).await.unwrap() };
        assert_eq!(refused("tok_chargeDeclined").await, Err(Refusal::Declined("insufficient_funds".into())));
        assert_eq!(refused("tok_bare").await, Err(Refusal::Declined("card_declined".into())));
        assert_eq!(refused("tok_nope").await, Err(Refusal::InvalidToken));
        let asked = log.lock().unwrap().len();
        for token in ["", "visa", "tok_", "tok_a&b=c", "pm_x y", "card_123"] {
            assert_eq!(refused(token).await, Err(Refusal::InvalidToken), "{token:?}");
        }
        assert_eq!(log.lock().unwrap().len(), asked, "what is no token is never sent");
    }

    #[tokio::test]
    async fn no_answer_an_error_answer_or_an_unreadable_one_is_gateway_down() {
        for (status, body) in [
            (500, error("api_error", serde_json::json!({}))),
            (503, "Service Unavailable".to_owned()),
            (429, error("rate_limit", serde_json::json!({}))),
            (200, "<html>not json</html>".to_owned()),
            (401, error("api_key_invalid", serde_json::json!({}))),
            (409, error("idempotency_key_in_use", serde_json::json!({}))),
            (400, error("idempotency_error", serde_json::json!({}))),
        ] {
            let (gateway, _) = stripe(move |_| (status, body.clone())).await;
            let answer = gateway.authorize("k", &ask("tok_visa", false)).await;
            assert!(answer.is_err(), "{status}: {answer:?}");
            assert!(gateway.settle("k", &pi("pi_1"), "tok_visa").await.is_err(), "{status}");
            assert!(gateway.void("k", &pi("pi_1")).await.is_err(), "{status}");
            assert!(gateway.refund("k", &pi("pi_1"), 1).await.is_err(), "{status}");
        }
        // Nothing listens there.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let gateway = StripeGateway::new(&format!("http://{closed}"), Arc::new(StripeSecrets::fixed("sk_test_x", "w")));
        assert!(gateway.authorize("k", &ask("tok_visa", false)).await.is_err());
    }

    #[tokio::test]
    async fn a_call_that_hangs_is_given_up_inside_the_functions_timeout() {
        // A listener that accepts and never answers.
        let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hung_url = format!("http://{}", hung.local_addr().unwrap());
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = hung.accept().await {
                open.push(socket);
            }
        });
        let gateway = StripeGateway::new(&hung_url, Arc::new(StripeSecrets::fixed("sk_test_x", "w")));
        let started = std::time::Instant::now();
        let answer = gateway.settle("k", &pi("pi_1"), "tok_visa").await;
        assert!(answer.is_err(), "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(4), "gave up after {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_resumed_authorization_takes_the_payment_intent_an_earlier_attempt_made() {
        let made = Arc::new(Log::new(None::<&'static str>));
        let existing = made.clone();
        let (gateway, log) = stripe(move |seen| match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/v1/payment_intents/search") => {
                let data: Vec<Value> = existing
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|status| serde_json::from_str(&intent("pi_earlier", status)).unwrap())
                    .collect();
                (200, serde_json::json!({"object": "search_result", "data": data}).to_string())
            }
            _ => (200, intent("pi_new", "requires_capture")),
        })
        .await;
        // Nothing found: created under the same key.
        assert_eq!(gateway.authorize("pay_1:authorize", &ask("tok_visa", true)).await, Ok(Ok(pi("pi_new"))));
        let seen = log.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].query, [("query".to_owned(), "metadata['payment_id']:'pay_1'".to_owned())]);
        assert_eq!(seen[1].header("idempotency-key"), Some("pay_1:authorize"));

        *made.lock().unwrap() = Some("requires_capture");
        assert_eq!(gateway.authorize("pay_1:authorize", &ask("tok_visa", true)).await, Ok(Ok(pi("pi_earlier"))));
        assert_eq!(log.lock().unwrap().len(), 3, "found: nothing created");
        *made.lock().unwrap() = Some("requires_payment_method");
        assert_eq!(
            gateway.authorize("pay_1:authorize", &ask("tok_visa", true)).await,
            Ok(Err(Refusal::Declined("card_declined".into())))
        );
        assert_eq!(log.lock().unwrap().len(), 4, "declined before: nothing created");
    }

    /// `capture` answers `answer`; the PaymentIntent then reads as `now`.
    async fn capture_answering(answer: (u16, String), now: &'static str) -> (StripeGateway, Arc<Log<Vec<Seen>>>) {
        stripe(move |seen| match seen.method.as_str() {
            "GET" => (200, intent("pi_1", now)),
            _ => answer.clone(),
        })
        .await
    }

    #[tokio::test]
    async fn a_capture_is_done_refused_or_left_claimed_as_stripe_says() {
        let unexpected = || (400, error("payment_intent_unexpected_state", serde_json::json!({})));
        let (gateway, log) = capture_answering((200, intent("pi_1", "succeeded")), "succeeded").await;
        assert_eq!(gateway.settle("pay_1:capture", &pi("pi_1"), "tok_visa").await, Ok(Ok(())));
        let capture = log.lock().unwrap()[0].clone();
        assert_eq!((capture.method.as_str(), capture.path.as_str()), ("POST", "/v1/payment_intents/pi_1/capture"));
        assert_eq!(capture.header("idempotency-key"), Some("pay_1:capture"));

        let expired = (400, error("charge_expired_for_capture", serde_json::json!({})));
        let (gateway, _) = capture_answering(expired, "canceled").await;
        assert_eq!(gateway.settle("k", &pi("pi_1"), "t").await, Ok(Err("charge_expired_for_capture".into())));
        // Our earlier capture, whose answer was lost.
        let (gateway, log) = capture_answering(unexpected(), "succeeded").await;
        assert_eq!(gateway.settle("k", &pi("pi_1"), "t").await, Ok(Ok(())));
        assert_eq!(log.lock().unwrap()[1].path, "/v1/payment_intents/pi_1", "re-read");
        let (gateway, _) = capture_answering(unexpected(), "canceled").await;
        assert_eq!(gateway.settle("k", &pi("pi_1"), "t").await, Ok(Err("canceled".into())));
        let (gateway, _) = capture_answering(unexpected(), "requires_capture").await;
        assert!(gateway.settle("k", &pi("pi_1"), "t").await.is_err(), "neither: left claimed");
        let declined = (402, error("card_declined", serde_json::json!({"decline_code": "do_not_honor"})));
        let (gateway, _) = capture_answering(declined, "requires_capture").await;
        assert_eq!(gateway.settle("k", &pi("pi_1"), "t").await, Ok(Err("do_not_honor".into())));
    }

    #[tokio::test]
    async fn a_void_canceled_already_is_done_and_one_captured_is_left_claimed() {
        let unexpected = || (400, error("payment_intent_unexpected_state", serde_json::json!({})));
        let (gateway, log) = capture_answering((200, intent("pi_1", "canceled")), "canceled").await;
        assert_eq!(gateway.void("pay_1:void", &pi("pi_1")).await, Ok(()));
        let cancel = log.lock().unwrap()[0].clone();
        assert_eq!(cancel.path, "/v1/payment_intents/pi_1/cancel");
        assert_eq!(cancel.header("idempotency-key"), Some("pay_1:void"));
        let (gateway, _) = capture_answering(unexpected(), "canceled").await;
        assert_eq!(gateway.void("k", &pi("pi_1")).await, Ok(()));
        let (gateway, _) = capture_answering(unexpected(), "succeeded").await;
        assert!(gateway.void("k", &pi("pi_1")).await.is_err());
    }

    #[tokio::test]
    async fn a_refund_refunded_already_is_done() {
        let (gateway, log) = stripe(|_| (200, r#"{"id":"re_1","object":"refund","status":"succeeded"}"#.into())).await;
        assert_eq!(gateway.refund("pay_1:refund", &pi("pi_1"), 2500).await, Ok(()));
        let refund = log.lock().unwrap()[0].clone();
        assert_eq!(refund.path, "/v1/refunds");
        assert_eq!(refund.header("idempotency-key"), Some("pay_1:refund"));
        assert_eq!((refund.field("payment_intent"), refund.field("amount")), (Some("pi_1"), Some("2500")));
        let (gateway, _) = stripe(|_| (400, error("charge_already_refunded", serde_json::json!({})))).await;
        assert_eq!(gateway.refund("k", &pi("pi_1"), 2500).await, Ok(()));
        let (gateway, _) = stripe(|_| (400, error("amount_too_large", serde_json::json!({})))).await;
        assert!(gateway.refund("k", &pi("pi_1"), 2500).await.is_err());
    }

    #[tokio::test]
    async fn a_reference_that_is_no_payment_intent_id_is_never_put_in_a_path() {
        let (gateway, log) = stripe(|_| (200, intent("pi_1", "succeeded"))).await;
        for reference in ["../v1/refunds", "pi_1/../../x", "sandbox:tok_visa:k", "pi_", ""] {
            assert!(gateway.settle("k", &pi(reference), "t").await.is_err(), "{reference:?}");
        }
        assert!(log.lock().unwrap().is_empty());
    }

    /// A fake Secrets Manager (awsJson 1.1) answering GetSecretValue with `values` in turn
    /// (`None`: ResourceNotFoundException), and a client of it.
    async fn secrets_manager(values: Vec<Option<&'static str>>) -> (StripeSecrets, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let (url, _) = server(Arc::new(move |seen: &Seen| {
            assert_eq!(seen.header("x-amz-target"), Some("secretsmanager.GetSecretValue"));
            match values[counter.fetch_add(1, Ordering::SeqCst).min(values.len() - 1)] {
                Some(value) => (
                    200,
                    serde_json::json!({"ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:s-AbCdEf", "Name": "s", "SecretString": value}).to_string(),
                ),
                None => (400, r#"{"__type":"ResourceNotFoundException","message":"no such secret"}"#.into()),
            }
        }))
        .await;
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .endpoint_url(url)
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("test", "test", None, None, "test"))
            .build();
        (StripeSecrets::in_secrets_manager(aws_sdk_secretsmanager::Client::from_conf(config), "s"), calls)
    }

    #[tokio::test]
    async fn the_secret_is_read_on_first_use_then_kept_and_a_failed_read_is_not_kept() {
        let both = r#"{"secret_key": "sk_test_1", "webhook_secret": "whsec_1"}"#;
        let (secrets, calls) = secrets_manager(vec![None, Some(both)]).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing read before it is wanted");
        assert!(secrets.secret_key().await.is_err());
        assert_eq!(secrets.secret_key().await, Ok("sk_test_1".into()), "read again after a failure");
        assert_eq!(secrets.webhook_secret().await, Ok("whsec_1".into()));
        assert_eq!(secrets.secret_key().await, Ok("sk_test_1".into()));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "kept once read");

        // The webhook secret is added after the first deploy: wanted and missing, read again.
        let key_only = r#"{"secret_key": "sk_test_1"}"#;
        let (secrets, calls) = secrets_manager(vec![Some(key_only), Some(both)]).await;
        assert_eq!(secrets.secret_key().await, Ok("sk_test_1".into()));
        assert_eq!(secrets.webhook_secret().await, Ok("whsec_1".into()));
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let (secrets, _) = secrets_manager(vec![Some("sk_live_not_json")]).await;
        let error = secrets.secret_key().await.unwrap_err();
        assert!(!error.0.contains("sk_live_not_json"), "the value is never quoted: {error}");
    }
}
