//! The payment provider of the simulation: a model of Stripe's API behind the real adapter
//! (`payment::clients::stripe::StripeGateway`, through its `Transport`), so the schedules run
//! the adapter's own recovery (a resumed authorization looking its PaymentIntent up, a capture
//! or cancel found done already, a refund found refunded).
//!
//! What it models, as Stripe's test mode (and infra/localstripe/testmode.py) answers:
//! - PaymentIntents with manual capture: created and confirmed (`tok_visa`, `tok_mastercard`,
//!   `tok_settlementFails` -> `requires_capture`; `tok_chargeDeclined` -> 402 and
//!   `requires_payment_method`; another token -> 400 `resource_missing`), captured (for
//!   `tok_settlementFails` refused with `charge_expired_for_capture` and canceled, as an
//!   expired authorization is), cancelled, refunded whole; a move in the wrong state is 400
//!   `payment_intent_unexpected_state` / `charge_already_refunded` / `charge_not_captured`;
//!   the Search API by `metadata['payment_id']`.
//! - `Idempotency-Key`: honoured (Stripe: a key seen answers its first answer again) or, drawn
//!   per schedule, ignored (localstripe: a second create makes a second PaymentIntent, which
//!   our own claims must prevent).
//! - Faults: a call may fail before it is done (nothing happened), after it (done, the answer
//!   lost), or answer 500; each call takes a few ms, so the callers interleave.
//! - Webhooks: every change sends its event (`payment_intent.succeeded`, `.canceled`,
//!   `.payment_failed`, `charge.refunded`), 1-2 times, to be delivered at a random later
//!   moment and in any order by the simulation's pump ([`Stripe::take_webhook`]); a charge's
//!   event names its payment in metadata or only through its PaymentIntent.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lambda_http::http::{Method, StatusCode};
use payment::clients::GatewayDown;
use payment::clients::stripe::{Call, Transport};
use serde_json::{Value, json};

use crate::{Rng, lock};

/// The webhook endpoint's signing secret.
pub const WEBHOOK_SECRET: &str = "whsec_simulation";

/// One PaymentIntent, as far as the simulation follows it.
#[derive(Debug, Clone)]
pub struct Intent {
    pub id: String,
    pub status: &'static str,
    pub payment_id: String,
    pub order_id: String,
    pub amount: u64,
    pub token: String,
    pub refunded: bool,
    pub cancellation_reason: Option<&'static str>,
    decline: Option<&'static str>,
}

impl Intent {
    /// Whether it holds or took the customer's money.
    pub fn holds_money(&self) -> bool {
        matches!(self.status, "requires_capture" | "succeeded") && !self.refunded
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "payment_intent",
            "status": self.status,
            "amount": self.amount,
            "currency": "usd",
            "capture_method": "manual",
            "metadata": {"payment_id": self.payment_id, "order_id": self.order_id},
            "cancellation_reason": self.cancellation_reason,
            "last_payment_error": self.decline.map(|code| json!({"code": "card_declined", "decline_code": code})),
            "latest_charge": format!("ch_{}", &self.id[3..]),
        })
    }
}

#[derive(Debug, Default)]
struct Ledger {
    intents: BTreeMap<String, Intent>,
    /// Idempotency key -> its first answer (only when keys are honoured).
    answers: BTreeMap<String, (StatusCode, Value)>,
    /// Events not delivered yet: (not before, event).
    webhooks: Vec<(tokio::time::Instant, Value)>,
    events: u64,
}

pub struct Stripe {
    rng: Mutex<Rng>,
    /// Stripe honours `Idempotency-Key`; localstripe ignores it.
    pub honours_keys: bool,
    /// Percent of calls that fail (a third before, a third after, a third 500).
    faults: AtomicU64,
    ledger: Mutex<Ledger>,
}

fn error(status: StatusCode, code: &str, extra: Value) -> (StatusCode, Value) {
    let mut error = json!({"type": "invalid_request_error", "code": code, "message": code});
    if let (Some(error), Some(extra)) = (error.as_object_mut(), extra.as_object()) {
        error.extend(extra.clone());
    }
    (status, json!({ "error": error }))
}

fn param<'a>(params: &'a [(&str, &str)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

impl Stripe {
    pub fn new(mut rng: Rng, faults: u64) -> Self {
        let honours_keys = rng.chance(50);
        Stripe { rng: Mutex::new(rng), honours_keys, faults: AtomicU64::new(faults), ledger: Default::default() }
    }

    /// No more faults (the last reconciler run, and the end of a schedule).
    pub fn calm(&self) {
        self.faults.store(0, Ordering::SeqCst);
    }

    pub fn intents(&self) -> Vec<Intent> {
        lock(&self.ledger).intents.values().cloned().collect()
    }

    /// A webhook event due now, picked at random among those due; `None` if none is.
    pub fn take_webhook(&self) -> Option<Value> {
        let now = tokio::time::Instant::now();
        let mut ledger = lock(&self.ledger);
        let due: Vec<usize> = (0..ledger.webhooks.len()).filter(|&i| ledger.webhooks[i].0 <= now).collect();
        if due.is_empty() {
            return None;
        }
        let at = due[lock(&self.rng).below(due.len() as u64) as usize];
        Some(ledger.webhooks.swap_remove(at).1)
    }

    /// An event Stripe sends again later (our endpoint did not take it).
    pub fn retry_webhook(&self, event: Value, after: Duration) {
        lock(&self.ledger).webhooks.push((tokio::time::Instant::now() + after, event));
    }

    /// When the first webhook waiting is due.
    pub fn next_webhook(&self) -> Option<tokio::time::Instant> {
        lock(&self.ledger).webhooks.iter().map(|w| w.0).min()
    }

    fn send_event(&self, ledger: &mut Ledger, kind: &str, object: Value) {
        ledger.events += 1;
        let event = json!({"id": format!("evt_sim{}", ledger.events), "object": "event", "type": kind, "data": {"object": object}});
        let mut rng = lock(&self.rng);
        for _ in 0..1 + rng.below(2) {
            let after = Duration::from_millis(rng.below(3000));
            ledger.webhooks.push((tokio::time::Instant::now() + after, event.clone()));
        }
    }

    fn charge_event(&self, ledger: &mut Ledger, intent: &Intent) {
        // Charges made by a PaymentIntent carry its metadata on Stripe; an event may also name
        // the payment only through its PaymentIntent (the webhook then asks for it).
        let metadata = if lock(&self.rng).chance(50) { json!({"payment_id": intent.payment_id}) } else { json!({}) };
        let charge = json!({
            "id": format!("ch_{}", &intent.id[3..]),
            "object": "charge",
            "payment_intent": intent.id,
            "amount": intent.amount,
            "amount_refunded": if intent.refunded { intent.amount } else { 0 },
            "refunded": intent.refunded,
            "metadata": metadata,
        });
        self.send_event(ledger, "charge.refunded", charge);
    }

    /// Does one call to the API, as Stripe would.
    fn answer(&self, call: &Call<'_>) -> (StatusCode, Value) {
        let mut ledger = lock(&self.ledger);
        let ledger = &mut *ledger;
        let key = call.idempotency_key.filter(|_| self.honours_keys && *call.method == Method::POST);
        if let Some(earlier) = key.and_then(|k| ledger.answers.get(k)) {
            return earlier.clone();
        }
        let answer = self.act(ledger, call);
        if let Some(key) = key {
            ledger.answers.insert(key.to_owned(), answer.clone());
        }
        answer
    }

    fn act(&self, ledger: &mut Ledger, call: &Call<'_>) -> (StatusCode, Value) {
        let params = call.params;
        let path: Vec<&str> = call.path.trim_start_matches("/v1/").split('/').collect();
        match (call.method.as_str(), path.as_slice()) {
            ("POST", ["payment_intents"]) => {
                let token = param(params, "payment_method_data[card][token]").unwrap_or_default();
                let (status, decline) = match token {
                    "tok_visa" | "tok_mastercard" | "tok_settlementFails" => ("requires_capture", None),
                    "tok_chargeDeclined" => ("requires_payment_method", Some("generic_decline")),
                    _ => return error(StatusCode::BAD_REQUEST, "resource_missing", json!({})),
                };
                let intent = Intent {
                    id: format!("pi_sim{}", ledger.intents.len() + 1),
                    status,
                    payment_id: param(params, "metadata[payment_id]").unwrap_or_default().to_owned(),
                    order_id: param(params, "metadata[order_id]").unwrap_or_default().to_owned(),
                    amount: param(params, "amount").and_then(|a| a.parse().ok()).unwrap_or(0),
                    token: token.to_owned(),
                    refunded: false,
                    cancellation_reason: None,
                    decline,
                };
                ledger.intents.insert(intent.id.clone(), intent.clone());
                if decline.is_some() {
                    self.send_event(ledger, "payment_intent.payment_failed", intent.json());
                    let extra = json!({"type": "card_error", "decline_code": "generic_decline", "payment_intent": intent.json()});
                    return error(StatusCode::PAYMENT_REQUIRED, "card_declined", extra);
                }
                (StatusCode::OK, intent.json())
            }
            ("GET", ["payment_intents", "search"]) => {
                let query = param(params, "query").unwrap_or_default();
                let wanted = query.strip_prefix("metadata['payment_id']:'").and_then(|q| q.strip_suffix('\''));
                let found: Vec<Value> = ledger
                    .intents
                    .values()
                    .filter(|i| Some(i.payment_id.as_str()) == wanted)
                    .map(Intent::json)
                    .collect();
                (StatusCode::OK, json!({"object": "search_result", "data": found}))
            }
            ("GET", ["payment_intents", id]) => match ledger.intents.get(*id) {
                Some(intent) => (StatusCode::OK, intent.json()),
                None => error(StatusCode::NOT_FOUND, "resource_missing", json!({})),
            },
            ("POST", ["payment_intents", id, verb @ ("capture" | "cancel")]) => {
                let Some(intent) = ledger.intents.get_mut(*id) else {
                    return error(StatusCode::NOT_FOUND, "resource_missing", json!({}));
                };
                let movable = match *verb {
                    "capture" => intent.status == "requires_capture",
                    _ => matches!(intent.status, "requires_capture" | "requires_payment_method"),
                };
                if !movable {
                    let extra = json!({"payment_intent": intent.json()});
                    return error(StatusCode::BAD_REQUEST, "payment_intent_unexpected_state", extra);
                }
                if *verb == "capture" && intent.token == "tok_settlementFails" {
                    intent.status = "canceled";
                    intent.cancellation_reason = Some("automatic");
                    let object = intent.json();
                    self.send_event(ledger, "payment_intent.canceled", object);
                    return error(StatusCode::BAD_REQUEST, "charge_expired_for_capture", json!({}));
                }
                let kind = if *verb == "capture" {
                    intent.status = "succeeded";
                    "payment_intent.succeeded"
                } else {
                    intent.status = "canceled";
                    intent.cancellation_reason = Some("requested_by_customer");
                    "payment_intent.canceled"
                };
                let object = intent.json();
                self.send_event(ledger, kind, object.clone());
                (StatusCode::OK, object)
            }
            ("POST", ["refunds"]) => {
                let id = param(params, "payment_intent").unwrap_or_default();
                let Some(intent) = ledger.intents.get_mut(id) else {
                    return error(StatusCode::BAD_REQUEST, "resource_missing", json!({}));
                };
                let amount = param(params, "amount").and_then(|a| a.parse::<u64>().ok()).unwrap_or(intent.amount);
                match () {
                    _ if intent.status != "succeeded" => {
                        error(StatusCode::BAD_REQUEST, "charge_not_captured", json!({}))
                    }
                    _ if intent.refunded => error(StatusCode::BAD_REQUEST, "charge_already_refunded", json!({})),
                    _ if amount != intent.amount => error(StatusCode::BAD_REQUEST, "amount_too_large", json!({})),
                    _ => {
                        intent.refunded = true;
                        let intent = intent.clone();
                        self.charge_event(ledger, &intent);
                        let refund = json!({"id": format!("re_{}", &intent.id[3..]), "object": "refund", "status": "succeeded", "amount": amount, "payment_intent": intent.id});
                        (StatusCode::OK, refund)
                    }
                }
            }
            _ => error(StatusCode::NOT_FOUND, "resource_missing", json!({"message": "Unrecognized request URL"})),
        }
    }
}

impl Transport for Stripe {
    async fn send(&self, call: Call<'_>) -> Result<(StatusCode, Value), GatewayDown> {
        let (fault, pause) = {
            let mut rng = lock(&self.rng);
            let faults = self.faults.load(Ordering::SeqCst);
            (if rng.chance(faults) { 1 + rng.below(3) } else { 0 }, rng.below(4))
        };
        let what = format!("{} {}", call.method, call.path);
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        match fault {
            1 => return Err(GatewayDown(format!("{what}: connection refused"))),
            3 => return Err(GatewayDown(format!("{what}: answered 500"))),
            _ => {}
        }
        let answer = self.answer(&call);
        if fault == 2 {
            tokio::time::sleep(Duration::from_millis(1 + pause)).await;
            return Err(GatewayDown(format!("{what}: timed out after the request was sent")));
        }
        Ok(answer)
    }
}
