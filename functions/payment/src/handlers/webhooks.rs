//! `POST /webhooks/stripe` (no authorizer): Stripe's own word on our payments. Only a request
//! signed with the endpoint's secret counts: `Stripe-Signature: t=<unix seconds>,v1=<hex>`,
//! where some `v1` is the HMAC-SHA256 of `{t}.{raw body}` (several during a secret's rotation;
//! `v0` and unknown schemes are ignored), and `t` is within [`TOLERANCE_SECONDS`] of now, so an
//! old request replayed is refused. Anything else is 400 `/problems/invalid-signature` and
//! changes nothing.
//!
//! A signed event moves the payment through the same conditional transitions as settlement
//! (`consumer`), with the same event written in the same transaction (the outbox):
//!
//! - `payment_intent.succeeded`: `authorized` or `settling` -> `settled`, `payment.completed`;
//! - `payment_intent.canceled`: `settling` -> `failed`, `payment.failed` (our capture came after
//!   the provider let the authorization go: it expired); `authorized` -> `voided`, no event
//!   (settlement then finds it voided and reports `payment.failed`, as for any void);
//! - `charge.refunded`, all of it: `settled` or `refunding` -> `refunded`, `payment.refunded`;
//! - `payment_intent.payment_failed`: nothing moves; a decline is answered and recorded when
//!   authorizing (the key's outcome), and a declined authorization makes no payment;
//! - `charge.dispute.created`: logged at warn and counted (`PaymentDisputes`); nothing moves.
//!
//! Stripe retries for days and in any order: a transition whose `from` no longer holds is no
//! error, the event changes nothing (`unchanged`), and so a duplicate changes nothing twice. A
//! payment in `voiding` is left to whoever claimed the void: its record carries the event
//! that void reports (`payment.refunded` for a cancelled order, none for checkout's), which
//! the webhook cannot tell apart. A payment we do not know (another stack on the same
//! localstripe, one not recorded yet) is `ignored`, with 200 all the same: only a failure
//! here (a store or Stripe down) is worth Stripe's retry.

use std::future::Future;

use crate::moves;
use hmac::{Hmac, KeyInit, Mac};
use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::Sha256;
use shared::config::ConfigError;
use shared::http::correlation_id;
use shared::metrics::{self, Metric};
use shared::outbox::deliver;
use shared::publisher::Publish;
use shared::{CorrelationId, Envelope, Problem, Reply};

use crate::clients::GatewayDown;
use crate::clients::stripe::{StripeGateway, StripeSecrets};
use crate::domain::PaymentStatus;
use crate::store::{PaymentStore, StoreError, StoredPayment};

/// How far a signature's `t` may be from now, either way (Stripe's libraries: 300 s).
pub const TOLERANCE_SECONDS: i64 = 300;

/// What the webhook needs of the provider besides the request.
pub trait Provider: Send + Sync {
    /// The endpoint's signing secret (`whsec_...`).
    fn webhook_secret(&self) -> impl Future<Output = Result<String, GatewayDown>> + Send;
    /// The payment a PaymentIntent was made for (its `metadata.payment_id`); `None` if the
    /// provider has no such PaymentIntent or it names no payment. A charge or a dispute names
    /// only its PaymentIntent.
    fn payment_of(&self, payment_intent: &str) -> impl Future<Output = Result<Option<String>, GatewayDown>> + Send;
}

// ---------------------------------------------------------------------------------------
// The signature

/// Why a request is not one Stripe signed for us.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    #[error("there is no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header is not t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=...]")]
    Malformed,
    /// `now - t`, in seconds.
    #[error("the signature is {0} s old (now - t), beyond the {TOLERANCE_SECONDS} s allowed either way")]
    OutOfTolerance(i64),
    #[error("no v1 signature is the body's with this endpoint's secret")]
    Mismatch,
}

/// A parsed `Stripe-Signature`.
struct Header<'a> {
    /// `t` as sent: it is signed as sent.
    timestamp: &'a str,
    at: i64,
    v1: Vec<Vec<u8>>,
}

fn parse(header: &str) -> Result<Header<'_>, BadSignature> {
    let (mut timestamp, mut v1) = (None, Vec::new());
    for item in header.split(',') {
        let (scheme, value) = item.trim().split_once('=').ok_or(BadSignature::Malformed)?;
        match scheme {
            // Two timestamps: no telling which one was signed.
            "t" if timestamp.is_some() => return Err(BadSignature::Malformed),
            "t" => timestamp = Some(value),
            // A v1 that is no SHA-256 in hex can match nothing.
            "v1" => v1.extend(hex::decode(value).ok().filter(|mac| mac.len() == 32)),
            // v0 (Stripe's test-mode scheme) and any scheme to come.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(BadSignature::Malformed)?;
    let at = Some(timestamp)
        .filter(|t| (1..=12).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or(BadSignature::Malformed)?;
    if v1.is_empty() {
        return Err(BadSignature::Malformed);
    }
    Ok(Header { timestamp, at, v1 })
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length (a longer one is hashed first): this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Whether `header` signs `body` with `secret`, at `now` (unix seconds).
pub fn verify(header: Option<&str>, body: &[u8], secret: &str, now: i64) -> Result<(), BadSignature> {
    let header = parse(header.ok_or(BadSignature::Missing)?)?;
    let skew = now.saturating_sub(header.at);
    if skew.abs() > TOLERANCE_SECONDS {
        return Err(BadSignature::OutOfTolerance(skew));
    }
    let mac = mac(secret, header.timestamp, body);
    // verify_slice compares in constant time.
    if header.v1.iter().any(|v1| mac.clone().verify_slice(v1).is_ok()) { Ok(()) } else { Err(BadSignature::Mismatch) }
}

/// The `Stripe-Signature` Stripe would send with `body` at `timestamp`: for tests and for
/// tools that post events to a stack (the system tests sign with the stack's secret).
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex::encode(mac(secret, &timestamp.to_string(), body).finalize().into_bytes()))
}

// ---------------------------------------------------------------------------------------
// The events

/// What the webhook did with an event, as its answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Settled,
    Failed,
    Voided,
    Refunded,
    /// A dispute of one of our payments, logged and counted.
    Disputed,
    /// Ours, with nothing to change: a duplicate, a late event, or one that moves nothing.
    Unchanged,
    /// Not about a payment of ours, or a type this endpoint does not act on.
    Ignored,
}

#[derive(Debug, Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: Value,
}

#[derive(Debug, Deserialize)]
struct Intent {
    id: String,
    status: String,
    #[serde(default)]
    metadata: Value,
    #[serde(default)]
    cancellation_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Charge {
    id: String,
    /// Its id, or the PaymentIntent itself if expanded.
    #[serde(default)]
    payment_intent: Option<Value>,
    #[serde(default)]
    metadata: Value,
    /// Whether all of it is refunded (`charge.refunded` is sent for partial refunds too).
    #[serde(default)]
    refunded: bool,
}

#[derive(Debug, Deserialize)]
struct Dispute {
    id: String,
    #[serde(default)]
    charge: Option<Value>,
    #[serde(default)]
    payment_intent: Option<Value>,
    #[serde(default)]
    amount: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
}

/// An id field that may also be the expanded object.
fn id_of(field: &Option<Value>) -> Option<&str> {
    field.as_ref().and_then(|v| v.as_str().or_else(|| v["id"].as_str()))
}

fn payment_id_in(metadata: &Value) -> Option<&str> {
    metadata.get("payment_id").and_then(Value::as_str).filter(|id| !id.is_empty())
}

/// What Stripe says happened to a payment of ours, where that moves it.
#[derive(Debug, Clone, PartialEq)]
enum Said {
    Captured,
    /// The authorization is gone, for this reason (Stripe's `cancellation_reason`).
    Cancelled(String),
    Refunded,
}

/// The transition `said` makes from `stored`'s status, with the event that reports it.
fn step(
    said: &Said,
    stored: &StoredPayment,
    correlation_id: &CorrelationId,
) -> Option<(PaymentStatus, Option<Envelope>)> {
    let reported = |outcome: moves::Outcome| Some(moves::report(&stored.payment, &outcome, correlation_id));
    match (said, stored.payment.status) {
        (Said::Captured, PaymentStatus::Authorized | PaymentStatus::Settling) => {
            Some((PaymentStatus::Settled, reported(moves::Outcome::Settled)))
        }
        (Said::Cancelled(reason), PaymentStatus::Settling) => {
            Some((PaymentStatus::Failed, reported(moves::Outcome::Failed(reason.clone()))))
        }
        (Said::Cancelled(_), PaymentStatus::Authorized) => Some((PaymentStatus::Voided, None)),
        (Said::Refunded, PaymentStatus::Settled | PaymentStatus::Refunding) => {
            Some((PaymentStatus::Refunded, reported(moves::Outcome::Refunded)))
        }
        _ => None,
    }
}

fn outcome_of(status: PaymentStatus) -> Outcome {
    match status {
        PaymentStatus::Settled => Outcome::Settled,
        PaymentStatus::Failed => Outcome::Failed,
        PaymentStatus::Voided => Outcome::Voided,
        PaymentStatus::Refunded => Outcome::Refunded,
        _ => Outcome::Unchanged,
    }
}

fn provider_down(error: GatewayDown) -> Problem {
    tracing::error!(%error, "Stripe unavailable to the webhook");
    Problem::unavailable("the payment provider did not answer; nothing was changed, send the event again")
}

/// The event's object as `T`: a signed event we cannot read is Stripe's shape changing
/// under us, 400 so that it shows in Stripe's dashboard and is retried after the fix.
fn object<T: DeserializeOwned>(event: &StripeEvent) -> Result<T, Problem> {
    serde_json::from_value(event.data.object.clone())
        .map_err(|e| Problem::bad_request(format!("{} {}: unexpected object: {e}", event.kind, event.id)))
}

/// Our payment the event is about: named by `payment_id` (metadata), or by its PaymentIntent.
/// The PaymentIntent must be the one the payment records: another one with the same metadata
/// (made by an attempt whose answer was lost) says nothing about this payment.
async fn ours<S: PaymentStore, A: Provider>(
    store: &S,
    provider: &A,
    payment_id: Option<&str>,
    intent: Option<&str>,
) -> Result<Option<StoredPayment>, Problem> {
    let payment_id = match (payment_id, intent) {
        (Some(id), _) => id.to_owned(),
        (None, Some(intent)) => match provider.payment_of(intent).await.map_err(provider_down)? {
            Some(id) => id,
            None => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    let Some(stored) = store.get(&payment_id).await? else { return Ok(None) };
    if let Some(intent) = intent
        && stored.gateway_ref.0 != intent
    {
        tracing::warn!(%payment_id, payment_intent = %intent, recorded = %stored.gateway_ref.0, "an event about another PaymentIntent of this payment");
        return Ok(None);
    }
    Ok(Some(stored))
}

/// Moves `stored` as `said` says, conditionally on the status it was read in; read again if
/// it moved meanwhile.
async fn record<S: PaymentStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    mut stored: StoredPayment,
    said: &Said,
    correlation_id: &CorrelationId,
) -> Result<Outcome, Problem> {
    let payment_id = stored.payment.payment_id.clone();
    for _ in 0..3 {
        let from = stored.payment.status;
        let Some((to, event)) = step(said, &stored, correlation_id) else {
            tracing::info!(%payment_id, status = ?from, ?said, "nothing to change");
            return Ok(Outcome::Unchanged);
        };
        let moved = match &event {
            Some(event) => store.transition_with(&payment_id, from, to, event).await?,
            None => store.transition(&payment_id, from, to).await?,
        };
        if moved {
            match to {
                PaymentStatus::Voided => {
                    tracing::warn!(%payment_id, "the provider let an authorization we held go; settlement will fail it")
                }
                _ => tracing::info!(%payment_id, ?from, ?to, "payment moved by the provider's event"),
            }
            if to == PaymentStatus::Failed {
                metrics::count(Metric::PaymentFailures, ("Service", "payment"), 1);
            }
            deliver(store.outbox(), publisher, event.as_slice()).await;
            return Ok(outcome_of(to));
        }
        // Moved meanwhile (settlement recording its own outcome, say): look again.
        match store.get(&payment_id).await? {
            Some(again) => stored = again,
            None => return Ok(Outcome::Ignored),
        }
    }
    Err(StoreError::Contended(format!("payment {payment_id} keeps changing")).into())
}

async fn act<S: PaymentStore, A: Provider, P: Publish + Sync>(
    store: &S,
    provider: &A,
    publisher: &P,
    event: &StripeEvent,
    correlation_id: &CorrelationId,
) -> Result<Outcome, Problem> {
    let (said, stored) = match event.kind.as_str() {
        "payment_intent.succeeded" | "payment_intent.canceled" | "payment_intent.payment_failed" => {
            let intent: Intent = object(event)?;
            let Some(stored) = ours(store, provider, payment_id_in(&intent.metadata), Some(&intent.id)).await? else {
                return Ok(Outcome::Ignored);
            };
            let said = match (event.kind.as_str(), intent.status.as_str()) {
                ("payment_intent.succeeded", "succeeded") => Said::Captured,
                ("payment_intent.canceled", "canceled") => {
                    Said::Cancelled(intent.cancellation_reason.unwrap_or_else(|| "canceled".into()))
                }
                ("payment_intent.payment_failed", _) => {
                    tracing::info!(payment_id = %stored.payment.payment_id, status = ?stored.payment.status, "a payment attempt failed at the provider; declines are recorded when authorizing");
                    return Ok(Outcome::Unchanged);
                }
                // An event whose object contradicts its type (localstripe sends
                // payment_intent.succeeded for a capture of a canceled PaymentIntent).
                (kind, status) => {
                    tracing::warn!(payment_id = %stored.payment.payment_id, kind, status, "an event its PaymentIntent contradicts");
                    return Ok(Outcome::Unchanged);
                }
            };
            (said, stored)
        }
        "charge.refunded" => {
            let charge: Charge = object(event)?;
            let Some(stored) =
                ours(store, provider, payment_id_in(&charge.metadata), id_of(&charge.payment_intent)).await?
            else {
                return Ok(Outcome::Ignored);
            };
            if !charge.refunded {
                tracing::info!(payment_id = %stored.payment.payment_id, charge = %charge.id, "a partial refund; payments are refunded whole here");
                return Ok(Outcome::Unchanged);
            }
            (Said::Refunded, stored)
        }
        "charge.dispute.created" => {
            let dispute: Dispute = object(event)?;
            let stored = match id_of(&dispute.payment_intent) {
                Some(intent) => ours(store, provider, None, Some(intent)).await?,
                None => None,
            };
            let Some(stored) = stored else {
                tracing::info!(dispute = %dispute.id, charge = ?id_of(&dispute.charge), "a dispute of no payment of ours");
                return Ok(Outcome::Ignored);
            };
            tracing::warn!(
                payment_id = %stored.payment.payment_id,
                order_id = %stored.payment.order_id,
                dispute = %dispute.id,
                amount_cents = ?dispute.amount,
                reason = ?dispute.reason,
                "payment disputed: answer it in Stripe's dashboard before its deadline"
            );
            metrics::count(Metric::PaymentDisputes, ("Service", "payment"), 1);
            return Ok(Outcome::Disputed);
        }
        other => {
            tracing::info!(event = %event.id, kind = other, "an event type this endpoint does not act on");
            return Ok(Outcome::Ignored);
        }
    };
    record(store, publisher, stored, &said, correlation_id).await
}

/// `POST /webhooks/stripe`: 200 `{"received": true, "outcome": ...}` for a signed event,
/// whatever it changed; 400 unsigned, wrongly signed, stale, or no event; 503 if the secret,
/// the store or Stripe cannot be read (nothing changed: Stripe sends it again).
pub async fn receive<S: PaymentStore, A: Provider, P: Publish + Sync>(
    store: &S,
    provider: &A,
    publisher: &P,
    request: Request,
) -> Result<Reply, Problem> {
    // The bytes as Stripe sent them: lambda_http has decoded a base64 body already.
    let body: &[u8] = request.body().as_ref();
    let header = match request.headers().get("stripe-signature") {
        Some(value) => Some(value.to_str().map_err(|_| invalid_signature(BadSignature::Malformed))?),
        None => None,
    };
    let secret = provider.webhook_secret().await.map_err(provider_down)?;
    if secret.is_empty() {
        // Every body would be "signed" with an empty key by anyone.
        return Err(provider_down(GatewayDown("the webhook secret is empty".into())));
    }
    verify(header, body, &secret, chrono::Utc::now().timestamp()).map_err(invalid_signature)?;
    let event: StripeEvent =
        serde_json::from_slice(body).map_err(|e| Problem::bad_request(format!("the body is no Stripe event: {e}")))?;
    let outcome = act(store, provider, publisher, &event, &correlation_id(&request)).await?;
    tracing::info!(event = %event.id, kind = %event.kind, ?outcome, "Stripe event received");
    Ok(Reply::ok(&json!({"received": true, "outcome": outcome})))
}

fn invalid_signature(why: BadSignature) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-signature",
        "Invalid signature",
        format!("this is no event Stripe signed for this endpoint: {why}"),
    )
}

// ---------------------------------------------------------------------------------------
// Stripe

/// Stripe as the webhook reads it: the secret of [`StripeSecrets`] and, for the charges and
/// disputes that name no payment themselves, their PaymentIntent read through the adapter's
/// own client (`STRIPE_API_BASE`, localstripe on the local stack).
pub struct StripeProvider(StripeGateway);

impl StripeProvider {
    /// `STRIPE_API_BASE` (default Stripe's) and the secret named by `STRIPE_SECRET_NAME`;
    /// nothing is fetched yet.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self(StripeGateway::from_env(sdk)?))
    }

    pub fn new(api_base: &str, secrets: StripeSecrets) -> Self {
        Self(StripeGateway::new(api_base, std::sync::Arc::new(secrets)))
    }
}

impl Provider for StripeProvider {
    async fn webhook_secret(&self) -> Result<String, GatewayDown> {
        self.0.webhook_secret().await
    }

    async fn payment_of(&self, payment_intent: &str) -> Result<Option<String>, GatewayDown> {
        // Checked before it goes into a path; anything else is no PaymentIntent of ours.
        let id_like = payment_intent
            .strip_prefix("pi_")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if !id_like || payment_intent.len() > 255 {
            return Ok(None);
        }
        self.0.payment_of(payment_intent).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::events::Event;
    use std::collections::HashMap;

    use crate::store::memory::MemoryStore;
    use shared::publisher::MemoryPublisher;
    use testkit::requests::{body, call, sample, with_body};

    const SECRET: &str = "whsec_test_secret";
    const PAYMENT: &str = "pay_01JD4S5Q2R3S4T5V6W7X8Y9Z0A";
    const INTENT: &str = "pi_3QWebhookSample0001";
    const NOW: i64 = 1_795_687_200;

    /// The webhook secret, and which PaymentIntent is which payment's.
    struct Known {
        secret: &'static str,
        intents: HashMap<&'static str, &'static str>,
    }

    impl Default for Known {
        fn default() -> Self {
            Self { secret: SECRET, intents: HashMap::from([(INTENT, PAYMENT)]) }
        }
    }

    impl Provider for Known {
        async fn webhook_secret(&self) -> Result<String, GatewayDown> {
            Ok(self.secret.to_owned())
        }
        async fn payment_of(&self, payment_intent: &str) -> Result<Option<String>, GatewayDown> {
            Ok(self.intents.get(payment_intent).map(|p| (*p).to_owned()))
        }
    }

    // ------------------------------------------------------------------ the signature

    /// Computed with Python's hmac, as localstripe signs (`webhooks.py`).
    const BODY: &[u8] = br#"{"id": "evt_1", "type": "payment_intent.succeeded"}"#;
    const PYTHON_V1: &str = "b59eb5a85abb42b7cc00e9ef02f3fff38c40dddb57362ce708853a4f5a33f8a2";

    #[test]
    fn a_signature_made_as_stripe_makes_it_verifies() {
        let header = format!("t={NOW},v1={PYTHON_V1}");
        assert_eq!(verify(Some(&header), BODY, SECRET, NOW), Ok(()));
        assert_eq!(signature_header(SECRET, NOW, BODY), header, "the same computation as Stripe's");
    }

    #[test]
    fn any_v1_may_match_and_v0_is_ignored() {
        let forged = "0".repeat(64);
        let header = format!("t={NOW},v1={forged},v0={PYTHON_V1},v1={PYTHON_V1}");
        assert_eq!(verify(Some(&header), BODY, SECRET, NOW), Ok(()), "a rotation: the old and the new secret's");
        let only_v0 = format!("t={NOW},v0={PYTHON_V1}");
        assert_eq!(verify(Some(&only_v0), BODY, SECRET, NOW), Err(BadSignature::Malformed), "v0 is not trusted");
        let only_forged = format!("t={NOW},v1={forged},v1={}", "f".repeat(64));
        assert_eq!(verify(Some(&only_forged), BODY, SECRET, NOW), Err(BadSignature::Mismatch));
    }

    #[test]
    fn a_changed_body_another_secret_or_another_timestamp_does_not_verify() {
        let header = format!("t={NOW},v1={PYTHON_V1}");
        let changed = br#"{"id": "evt_1", "type": "payment_intent.canceled"}"#;
        assert_eq!(verify(Some(&header), changed, SECRET, NOW), Err(BadSignature::Mismatch));
        assert_eq!(verify(Some(&header), BODY, "whsec_other", NOW), Err(BadSignature::Mismatch));
        // The timestamp is signed: moving it into the window breaks the signature.
        let moved = format!("t={},v1={PYTHON_V1}", NOW + 1);
        assert_eq!(verify(Some(&moved), BODY, SECRET, NOW), Err(BadSignature::Mismatch));
    }

    #[test]
    fn five_minutes_either_way_and_not_a_second_more() {
        let header = format!("t={NOW},v1={PYTHON_V1}");
        for now in [NOW - TOLERANCE_SECONDS, NOW + TOLERANCE_SECONDS] {
            assert_eq!(verify(Some(&header), BODY, SECRET, now), Ok(()), "{now}");
        }
        let stale = verify(Some(&header), BODY, SECRET, NOW + TOLERANCE_SECONDS + 1);
        assert_eq!(stale, Err(BadSignature::OutOfTolerance(301)));
        let future = verify(Some(&header), BODY, SECRET, NOW - TOLERANCE_SECONDS - 1);
        assert_eq!(future, Err(BadSignature::OutOfTolerance(-301)));
    }

    #[test]
    fn a_missing_or_malformed_header_is_refused() {
        assert_eq!(verify(None, BODY, SECRET, NOW), Err(BadSignature::Missing));
        let v1 = PYTHON_V1;
        for header in [
            "".to_owned(),
            "garbage".to_owned(),
            format!("v1={v1}"),
            format!("t={NOW}"),
            format!("t=,v1={v1}"),
            format!("t=-5,v1={v1}"),
            format!("t=1e9,v1={v1}"),
            format!("t={NOW}0000000000,v1={v1}"),
            format!("t={NOW},t={NOW},v1={v1}"),
            format!("t={NOW},v1=xyz"),
            format!("t={NOW},v1={}", &v1[..62]),
            format!("t={NOW};v1={v1}"),
        ] {
            assert_eq!(verify(Some(&header), BODY, SECRET, NOW), Err(BadSignature::Malformed), "{header:?}");
        }
        // White space around the items is Stripe's libraries' leniency too.
        assert_eq!(verify(Some(&format!("t={NOW}, v1={v1}")), BODY, SECRET, NOW), Ok(()));
    }

    // ------------------------------------------------------------------ the events

    /// A store holding the sample payment (PaymentIntent [`INTENT`]) in `status`.
    async fn store_at(status: PaymentStatus) -> MemoryStore {
        crate::store::memory::holding_sample(status, chrono::Utc::now(), INTENT, "tok_visa").await
    }

    async fn status(store: &MemoryStore) -> PaymentStatus {
        store.get(PAYMENT).await.unwrap().unwrap().payment.status
    }

    fn intent_event(kind: &str, status: &str) -> Value {
        json!({
            "id": "evt_1", "object": "event", "type": kind, "created": NOW, "livemode": false,
            "data": {"object": {"id": INTENT, "object": "payment_intent", "status": status, "amount": 7098,
                "currency": "usd", "metadata": {"payment_id": PAYMENT, "order_id": "ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E"}}},
        })
    }

    /// A charge of the sample payment's PaymentIntent, as localstripe sends it (no metadata).
    fn refunded_event(all: bool) -> Value {
        json!({
            "id": "evt_2", "object": "event", "type": "charge.refunded", "created": NOW,
            "data": {"object": {"id": "ch_1", "object": "charge", "payment_intent": INTENT, "metadata": {},
                "amount": 7098, "amount_refunded": if all { 7098 } else { 1000 }, "refunded": all, "captured": true}},
        })
    }

    fn dispute_event(intent: &str) -> Value {
        json!({
            "id": "evt_3", "object": "event", "type": "charge.dispute.created", "created": NOW,
            "data": {"object": {"id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": intent,
                "amount": 7098, "reason": "fraudulent", "status": "needs_response", "metadata": {}}},
        })
    }

    /// The sample request with `event` as its body, signed now with `secret`.
    fn signed_with(event: &Value, secret: &str) -> Request {
        let text = event.to_string();
        let header = signature_header(secret, chrono::Utc::now().timestamp(), text.as_bytes());
        with_signature(with_body(sample("http-post-webhooks-stripe.json"), &text), Some(&header))
    }

    fn signed(event: &Value) -> Request {
        signed_with(event, SECRET)
    }

    fn with_signature(mut request: Request, header: Option<&str>) -> Request {
        match header {
            Some(header) => request.headers_mut().insert("stripe-signature", header.parse().unwrap()),
            None => request.headers_mut().remove("stripe-signature"),
        };
        request
    }

    struct World {
        store: MemoryStore,
        publisher: MemoryPublisher,
        provider: Known,
    }

    impl World {
        async fn at(status: PaymentStatus) -> Self {
            Self { store: store_at(status).await, publisher: MemoryPublisher::default(), provider: Known::default() }
        }

        async fn post(&self, request: Request) -> (u16, Value) {
            let response = call(&|r| receive(&self.store, &self.provider, &self.publisher, r), request).await;
            (response.status().as_u16(), body(&response))
        }

        /// The outcome of a signed event, which must be answered 200.
        async fn deliver(&self, event: &Value) -> Value {
            let (status, answer) = self.post(signed(event)).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["received"], true);
            answer["outcome"].clone()
        }

        /// The types of the events published, and how many are still in the outbox.
        async fn events(&self) -> (Vec<&'static str>, usize) {
            use shared::outbox::Outbox;
            let published = self.publisher.published().iter().map(|e| e.event_type()).collect();
            (published, self.store.outbox.pending(100).await.unwrap().len())
        }

        async fn status(&self) -> PaymentStatus {
            status(&self.store).await
        }
    }

    #[tokio::test]
    async fn unsigned_forged_and_stale_webhooks_are_400_and_change_nothing() {
        let world = World::at(PaymentStatus::Authorized).await;
        let event = intent_event("payment_intent.succeeded", "succeeded");
        let text = event.to_string();
        let now = chrono::Utc::now().timestamp();
        let request = |header: Option<String>| {
            with_signature(with_body(sample("http-post-webhooks-stripe.json"), &text), header.as_deref())
        };
        let stale = signature_header(SECRET, now - TOLERANCE_SECONDS - 60, text.as_bytes());
        let forged = format!("t={now},v1={}", "ab".repeat(32));
        let other_body = signature_header(SECRET, now, b"{}");
        for (why, header) in [
            ("missing", None),
            ("malformed", Some("t=soon".to_owned())),
            ("forged", Some(forged)),
            ("stale", Some(stale)),
            ("another body's", Some(other_body)),
        ] {
            let (status, answer) = world.post(request(header)).await;
            assert_eq!(status, 400, "{why}: {answer}");
            assert_eq!(answer["type"], "/problems/invalid-signature", "{why}");
        }
        let (status, answer) = world.post(signed_with(&event, "whsec_another_endpoints")).await;
        assert_eq!((status, &answer["type"]), (400, &json!("/problems/invalid-signature")));
        assert_eq!(world.status().await, PaymentStatus::Authorized);
        assert_eq!(world.events().await, (vec![], 0));
    }

    #[tokio::test]
    async fn succeeded_settles_an_authorized_or_settling_payment_with_payment_completed() {
        for from in [PaymentStatus::Authorized, PaymentStatus::Settling] {
            let world = World::at(from).await;
            assert_eq!(world.deliver(&intent_event("payment_intent.succeeded", "succeeded")).await, "settled");
            assert_eq!(world.status().await, PaymentStatus::Settled, "from {from:?}");
            assert_eq!(world.events().await, (vec!["payment.completed"], 0), "published, and gone from the outbox");
            let published = &world.publisher.published()[0];
            let Event::PaymentCompleted(completed) = &published.event else { panic!("{published:?}") };
            assert_eq!((completed.order_id.as_str(), completed.amount_cents), ("ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E", 7098));
        }
    }

    #[tokio::test]
    async fn canceled_fails_a_settling_payment_and_voids_an_authorized_one() {
        let settling = World::at(PaymentStatus::Settling).await;
        assert_eq!(settling.deliver(&intent_event("payment_intent.canceled", "canceled")).await, "failed");
        assert_eq!(settling.status().await, PaymentStatus::Failed);
        assert_eq!(settling.events().await, (vec!["payment.failed"], 0));

        let authorized = World::at(PaymentStatus::Authorized).await;
        assert_eq!(authorized.deliver(&intent_event("payment_intent.canceled", "canceled")).await, "voided");
        assert_eq!(authorized.status().await, PaymentStatus::Voided);
        assert_eq!(authorized.events().await, (vec![], 0), "settlement reports it when the order comes");

        // A void under way records itself, with the event its claimer reports.
        let voiding = World::at(PaymentStatus::Voiding).await;
        assert_eq!(voiding.deliver(&intent_event("payment_intent.canceled", "canceled")).await, "unchanged");
        assert_eq!(voiding.status().await, PaymentStatus::Voiding);
        assert_eq!(voiding.events().await, (vec![], 0));
    }

    #[tokio::test]
    async fn a_full_refund_refunds_a_settled_or_refunding_payment_found_through_its_payment_intent() {
        for from in [PaymentStatus::Settled, PaymentStatus::Refunding] {
            let world = World::at(from).await;
            assert_eq!(world.deliver(&refunded_event(true)).await, "refunded");
            assert_eq!(world.status().await, PaymentStatus::Refunded, "from {from:?}");
            assert_eq!(world.events().await, (vec!["payment.refunded"], 0));
        }
        let partly = World::at(PaymentStatus::Settled).await;
        assert_eq!(partly.deliver(&refunded_event(false)).await, "unchanged");
        assert_eq!(partly.status().await, PaymentStatus::Settled);
        // A charge that names the payment itself needs no look-up.
        let mut named = refunded_event(true);
        named["data"]["object"]["metadata"] = json!({"payment_id": PAYMENT});
        let world = World {
            provider: Known { intents: HashMap::new(), ..Known::default() },
            ..World::at(PaymentStatus::Settled).await
        };
        assert_eq!(world.deliver(&named).await, "refunded");
    }

    #[tokio::test]
    async fn a_payment_failure_or_a_dispute_moves_nothing() {
        let world = World::at(PaymentStatus::Authorized).await;
        let failed = intent_event("payment_intent.payment_failed", "requires_payment_method");
        assert_eq!(world.deliver(&failed).await, "unchanged");
        assert_eq!(world.deliver(&dispute_event(INTENT)).await, "disputed");
        assert_eq!(world.status().await, PaymentStatus::Authorized);
        assert_eq!(world.events().await, (vec![], 0));
        assert_eq!(world.deliver(&dispute_event("pi_someone_elses")).await, "ignored");
    }

    #[tokio::test]
    async fn events_about_payments_we_do_not_know_are_200_and_change_nothing() {
        let world = World::at(PaymentStatus::Authorized).await;
        // Another stack's payment (same localstripe), or one not recorded yet.
        let mut elsewhere = intent_event("payment_intent.succeeded", "succeeded");
        elsewhere["data"]["object"]["metadata"]["payment_id"] = json!("pay_of_another_stack");
        elsewhere["data"]["object"]["id"] = json!("pi_of_another_stack");
        assert_eq!(world.deliver(&elsewhere).await, "ignored");
        // Our payment id on another PaymentIntent: made by an attempt whose answer was lost.
        let mut duplicate = intent_event("payment_intent.canceled", "canceled");
        duplicate["data"]["object"]["id"] = json!("pi_second_attempt");
        assert_eq!(world.deliver(&duplicate).await, "ignored");
        let mut no_metadata = intent_event("payment_intent.succeeded", "succeeded");
        no_metadata["data"]["object"]["metadata"] = json!({});
        no_metadata["data"]["object"]["id"] = json!("pi_unknown");
        assert_eq!(world.deliver(&no_metadata).await, "ignored");
        let other_type = json!({"id": "evt_9", "type": "customer.created", "data": {"object": {"id": "cus_1"}}});
        assert_eq!(world.deliver(&other_type).await, "ignored");
        assert_eq!(world.status().await, PaymentStatus::Authorized);
        assert_eq!(world.events().await, (vec![], 0));
    }

    #[tokio::test]
    async fn a_signed_body_that_is_no_event_is_400() {
        let world = World::at(PaymentStatus::Authorized).await;
        for event in [
            json!([1, 2]),
            json!({"id": "evt_1"}),
            json!({"id": "evt_1", "type": "charge.refunded", "data": {"object": {"id": 5}}}),
        ] {
            let (status, answer) = world.post(signed(&event)).await;
            assert_eq!((status, &answer["type"]), (400, &json!("/problems/bad-request")), "{event}");
        }
        assert_eq!(world.status().await, PaymentStatus::Authorized);
    }

    #[tokio::test]
    async fn a_duplicate_changes_nothing_and_publishes_nothing_twice() {
        let world = World::at(PaymentStatus::Settling).await;
        let succeeded = intent_event("payment_intent.succeeded", "succeeded");
        assert_eq!(world.deliver(&succeeded).await, "settled");
        for _ in 0..3 {
            assert_eq!(world.deliver(&succeeded).await, "unchanged");
        }
        let cancelled_late = intent_event("payment_intent.canceled", "canceled");
        assert_eq!(
            world.deliver(&cancelled_late).await,
            "unchanged",
            "a settled payment is not failed by a stray event"
        );
        assert_eq!(world.status().await, PaymentStatus::Settled);
        assert_eq!(world.events().await, (vec!["payment.completed"], 0));
    }

    /// Our own capture and refund recorded (settled, then a cancelled order's refund
    /// claimed), and Stripe's events arriving refund first.
    #[tokio::test]
    async fn out_of_order_refunded_before_succeeded_ends_refunded_once() {
        let world = World::at(PaymentStatus::Refunding).await;
        assert_eq!(world.deliver(&refunded_event(true)).await, "refunded");
        assert_eq!(world.deliver(&intent_event("payment_intent.succeeded", "succeeded")).await, "unchanged");
        assert_eq!(world.deliver(&refunded_event(true)).await, "unchanged");
        assert_eq!(world.status().await, PaymentStatus::Refunded);
        assert_eq!(world.events().await, (vec!["payment.refunded"], 0));
        // The refund's claimer then records its outcome, and finds it recorded.
        assert!(!world.store.transition(PAYMENT, PaymentStatus::Refunding, PaymentStatus::Refunded).await.unwrap());
    }

    /// Settlement captured and recorded `settled` (with `payment.completed`) before Stripe's
    /// event came: it changes nothing.
    #[tokio::test]
    async fn succeeded_after_our_own_capture_was_recorded_changes_nothing() {
        let world = World::at(PaymentStatus::Settled).await;
        assert_eq!(world.deliver(&intent_event("payment_intent.succeeded", "succeeded")).await, "unchanged");
        assert_eq!(world.status().await, PaymentStatus::Settled);
        assert_eq!(world.events().await, (vec![], 0));
    }

    /// The reverse race: Stripe's event recorded the capture first; settlement's own record
    /// (the same conditional transition) then finds it done and writes no second event.
    #[tokio::test]
    async fn settlement_recording_after_the_webhook_publishes_nothing_twice() {
        let world = World::at(PaymentStatus::Settling).await;
        assert_eq!(world.deliver(&intent_event("payment_intent.succeeded", "succeeded")).await, "settled");
        let envelope = Envelope::new(world.publisher.published()[0].event.clone(), &CorrelationId::parse("c").unwrap());
        let recorded = world.store.transition_with(PAYMENT, PaymentStatus::Settling, PaymentStatus::Settled, &envelope);
        assert!(!recorded.await.unwrap());
        assert_eq!(world.events().await, (vec!["payment.completed"], 0));
    }

    #[tokio::test]
    async fn an_event_its_payment_intent_contradicts_changes_nothing() {
        // localstripe's capture of a canceled PaymentIntent sends succeeded with status canceled.
        let world = World::at(PaymentStatus::Authorized).await;
        assert_eq!(world.deliver(&intent_event("payment_intent.succeeded", "canceled")).await, "unchanged");
        assert_eq!(world.status().await, PaymentStatus::Authorized);
    }

    /// API Gateway base64-encodes bodies it does not take for text: the signature is over the
    /// bytes Stripe sent, which lambda_http gives back decoded.
    #[tokio::test]
    async fn a_base64_encoded_body_is_verified_on_the_bytes_stripe_sent() {
        use base64::Engine;
        let world = World::at(PaymentStatus::Authorized).await;
        // Not re-serialised: a byte changed would break the signature.
        let text = format!(
            "{}\n",
            serde_json::to_string_pretty(&intent_event("payment_intent.succeeded", "succeeded")).unwrap()
        );
        let header = signature_header(SECRET, chrono::Utc::now().timestamp(), text.as_bytes());
        let mut event: Value = serde_json::from_str(
            &std::fs::read_to_string(testkit::requests::events_dir().join("http-post-webhooks-stripe.json")).unwrap(),
        )
        .unwrap();
        event["isBase64Encoded"] = json!(true);
        event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&text));
        event["headers"]["stripe-signature"] = json!(header);
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let (status, answer) = world.post(request).await;
        assert_eq!((status, &answer["outcome"]), (200, &json!("settled")), "{answer}");
    }

    #[tokio::test]
    async fn the_sample_is_a_signed_event_of_the_sample_payment() {
        // The sample's signature is a placeholder (signatures go stale in 5 minutes): signed
        // again, its body is an event this endpoint acts on.
        let request = sample("http-post-webhooks-stripe.json");
        let text = String::from_utf8(request.body().as_ref().to_vec()).unwrap();
        let world = World::at(PaymentStatus::Settling).await;
        let (status, _) = world.post(sample("http-post-webhooks-stripe.json")).await;
        assert_eq!(status, 400, "the placeholder signs nothing");
        let header = signature_header(SECRET, chrono::Utc::now().timestamp(), text.as_bytes());
        let (status, answer) = world.post(with_signature(request, Some(&header))).await;
        assert_eq!((status, &answer["outcome"]), (200, &json!("settled")), "{answer}");
    }

    #[tokio::test]
    async fn an_empty_secret_verifies_nothing() {
        let world =
            World { provider: Known { secret: "", ..Known::default() }, ..World::at(PaymentStatus::Authorized).await };
        let (status, _) = world.post(signed_with(&intent_event("payment_intent.succeeded", "succeeded"), "")).await;
        assert_eq!(status, 503);
        assert_eq!(world.status().await, PaymentStatus::Authorized);
    }

    // ------------------------------------------------------------------ Stripe

    /// A Stripe that knows one PaymentIntent, for the secret key `sk_test_webhook`.
    async fn fake_stripe() -> String {
        use axum::extract::Path;
        use axum::http::HeaderMap;
        let app = axum::Router::new().route(
            "/v1/payment_intents/{id}",
            axum::routing::get(|Path(id): Path<String>, headers: HeaderMap| async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk_test_webhook") {
                    return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {}})));
                }
                match id.as_str() {
                    INTENT => (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({"id": INTENT, "metadata": {"payment_id": PAYMENT}})),
                    ),
                    "pi_unnamed" => (axum::http::StatusCode::OK, axum::Json(json!({"id": id, "metadata": {}}))),
                    "pi_broken" => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({}))),
                    _ => (
                        axum::http::StatusCode::NOT_FOUND,
                        axum::Json(json!({"error": {"type": "invalid_request_error"}})),
                    ),
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn stripe_names_the_payment_of_a_payment_intent() {
        let stripe = StripeProvider::new(&fake_stripe().await, StripeSecrets::fixed("sk_test_webhook", SECRET));
        assert_eq!(stripe.webhook_secret().await.unwrap(), SECRET);
        assert_eq!(stripe.payment_of(INTENT).await.unwrap().as_deref(), Some(PAYMENT));
        assert_eq!(stripe.payment_of("pi_unnamed").await.unwrap(), None);
        assert_eq!(stripe.payment_of("pi_unknown").await.unwrap(), None);
        assert_eq!(stripe.payment_of("../v1/customers").await.unwrap(), None, "no PaymentIntent id: never asked");
        assert!(stripe.payment_of("pi_broken").await.is_err(), "a 5xx is Stripe down: the webhook is retried");
        let wrong_key = StripeProvider::new(&fake_stripe().await, StripeSecrets::fixed("sk_test_other", SECRET));
        assert!(wrong_key.payment_of(INTENT).await.is_err());
    }
}
