//! The routes checkout calls (IAM): `POST /internal/payments/authorize` and
//! `POST /internal/payments/{payment_id}/void`.

use lambda_http::Request;
use lambda_http::http::{StatusCode, header};
use shared::contracts::AuthorizeRequest;
use shared::http::{json_body, path_parameter};
use shared::metrics::{self, Metric};
use shared::{CURRENCY, Problem, Reply};

use super::shown;
use crate::clients::{Authorization, GatewayDown, PaymentGateway, Refusal};
use crate::domain::{Operation, Payment, PaymentStatus, fingerprint, gateway_key, validate};
use crate::moves::{self, Move, MoveError};
use crate::store::{KeyOutcome, PaymentStore, StoredPayment};

fn gateway_down(error: GatewayDown) -> Problem {
    tracing::error!(%error, "payment gateway unavailable");
    Problem::unavailable("the payment gateway did not answer; nothing was captured. Try again with the same key")
}

/// A decline, with the provider's decline code (`generic_decline`, `insufficient_funds`, ...)
/// as its `decline_code`.
fn declined(decline_code: &str) -> Problem {
    Problem::new(
        StatusCode::PAYMENT_REQUIRED,
        "payment-declined",
        "Payment declined",
        format!("the payment was declined: {decline_code}"),
    )
    .with("decline_code", decline_code)
}

/// The payment an earlier request with this key authorized, if it still holds money: a
/// voided, failed or refunded one is no success to replay. One being voided is over too: its
/// void is finished first (resumed if whoever claimed it lost the answer; 409 while its claim
/// is young), so that a repeat of a checkout that gave the authorization back never builds an
/// order on it.
async fn replay<S: PaymentStore, G: PaymentGateway>(
    store: &S,
    gateway: &G,
    payment_id: &str,
) -> Result<Reply, Problem> {
    let Some(stored) = store.get(payment_id).await? else {
        return Err(Problem::unavailable("the payment is not readable yet; try again shortly"));
    };
    let status = match stored.payment.status {
        PaymentStatus::Voiding => match moves::run(store, gateway, payment_id, Move::Void, None).await {
            Ok(_) => PaymentStatus::Voided,
            Err(MoveError::Elsewhere(now)) => now.shown(),
            Err(MoveError::Missing(_)) => return Err(Problem::unavailable("the payment is not readable yet")),
            Err(error) => return Err(void_failed(error, payment_id)),
        },
        status => status.shown(),
    };
    match status {
        PaymentStatus::Authorized | PaymentStatus::Settled => {
            Ok(Reply::json(StatusCode::CREATED, &shown(&stored.payment)))
        }
        gone => Err(Problem::new(
            StatusCode::CONFLICT,
            "payment-not-live",
            "The authorization is over",
            format!("the authorization made with this key is {gone:?}; use a new key").to_lowercase(),
        )),
    }
}

pub async fn authorize<S: PaymentStore, G: PaymentGateway>(
    store: &S,
    gateway: &G,
    request: Request,
) -> Result<Reply, Problem> {
    let ask: AuthorizeRequest = json_body(&request)?;
    validate(&ask)?;
    let key = &ask.idempotency_key;
    let fingerprint = fingerprint(&ask);
    let fresh_id = format!("pay_{}", ulid::Ulid::generate());
    let pending = |since: i64, payment_id: &str| KeyOutcome::Pending {
        since,
        payment_id: payment_id.to_owned(),
        fingerprint: fingerprint.clone(),
    };
    let fresh = pending(store.now().timestamp(), &fresh_id);
    // Twice at most: a request that loses the race to record the outcome answers with it.
    for _ in 0..2 {
        let (claimed, payment_id, resumed) = match store.claim_key(key, &fresh).await? {
            None => (fresh.clone(), fresh_id.clone(), false),
            Some(earlier) if earlier.fingerprint() != fingerprint => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-key-reused",
                    "Idempotency key reused",
                    "this idempotency_key was used for another request",
                ));
            }
            Some(KeyOutcome::Authorized { payment_id, .. }) => return replay(store, gateway, &payment_id).await,
            Some(KeyOutcome::Declined { reason, .. }) => return Err(declined(&reason)),
            // Claimed moments ago: that request may still be asking the provider, and one that
            // ignores idempotency keys (localstripe) would make a second PaymentIntent.
            Some(KeyOutcome::Pending { since, .. })
                if since + moves::CLAIM_LEASE.num_seconds() > store.now().timestamp() =>
            {
                return Err(in_progress());
            }
            // Claimed by a request that died or lost its answer: take the claim over (one
            // taker wins) and resume it. The gateway key is the payment id's, so this is the
            // same authorization.
            Some(KeyOutcome::Pending { since, payment_id, .. }) => {
                // The same fingerprint (checked above): this is the claim as stored.
                let (earlier, renewed) = (pending(since, &payment_id), pending(store.now().timestamp(), &payment_id));
                if !store.settle_key(key, &earlier, &renewed, None).await? {
                    continue; // another request took it over, or recorded its outcome: look again
                }
                (renewed, payment_id, true)
            }
        };
        let authorize_key = gateway_key(&payment_id, Operation::Authorize);
        let charge = Authorization {
            payment_id: &payment_id,
            order_id: &ask.order_id,
            token: &ask.payment_token,
            amount_cents: ask.amount_cents,
            currency: CURRENCY,
            resumed,
        };
        let answer = match gateway.authorize(&authorize_key, &charge).await {
            Ok(answer) => answer,
            Err(down) => {
                // Maybe done, and no longer asking: the claim stays, stale at once, so the
                // retry resumes it (looking for what this attempt made) without waiting.
                if let Err(error) = store.settle_key(key, &claimed, &pending(0, &payment_id), None).await {
                    tracing::warn!(%error, "could not give the claim's lease up; the retry waits for it");
                }
                return Err(gateway_down(down));
            }
        };
        let (outcome, stored, reply) = match answer {
            Ok(gateway_ref) => {
                let now = store.now();
                let payment = Payment {
                    payment_id: payment_id.clone(),
                    order_id: ask.order_id.clone(),
                    user_id: ask.user_id.clone(),
                    amount_cents: ask.amount_cents,
                    currency: CURRENCY.to_owned(),
                    status: PaymentStatus::Authorized,
                    created_at: now,
                    updated_at: now,
                };
                let reply = Ok(Reply::json(StatusCode::CREATED, &shown(&payment)));
                let stored =
                    StoredPayment { payment, gateway_ref, token: ask.payment_token.clone(), reported_under: None };
                (
                    KeyOutcome::Authorized { payment_id: payment_id.clone(), fingerprint: fingerprint.clone() },
                    Some(stored),
                    reply,
                )
            }
            Err(Refusal::InvalidToken) => {
                store.drop_key(key, &claimed).await?;
                return Err(Problem::bad_request("payment_token is not a valid token"));
            }
            Err(Refusal::Declined(reason)) => {
                let reply = Err(declined(&reason));
                (KeyOutcome::Declined { reason, fingerprint: fingerprint.clone() }, None, reply)
            }
        };
        if !store.settle_key(key, &claimed, &outcome, stored.as_ref()).await? {
            continue; // another request with this key recorded first: answer as it did
        }
        match &reply {
            Ok(_) => tracing::info!(%payment_id, amount_cents = ask.amount_cents, "payment authorized"),
            Err(_) => metrics::count(Metric::PaymentFailures, ("Service", "payment"), 1),
        }
        return reply;
    }
    Err(in_progress())
}

fn in_progress() -> Problem {
    Problem::conflict("an authorization with this key is in progress; try again shortly")
        .header(header::RETRY_AFTER, "2")
}

pub async fn void<S: PaymentStore, G: PaymentGateway>(
    store: &S,
    gateway: &G,
    request: Request,
) -> Result<Reply, Problem> {
    let payment_id = path_parameter(&request, "payment_id")?;
    match moves::run(store, gateway, &payment_id, Move::Void, None).await {
        Ok(_) => tracing::info!(%payment_id, "payment voided"),
        Err(MoveError::Elsewhere(PaymentStatus::Voided)) => {}
        Err(error) => return Err(void_failed(error, &payment_id)),
    }
    match store.get(&payment_id).await? {
        Some(stored) => Ok(Reply::ok(&shown(&stored.payment))),
        None => Err(Problem::not_found(format!("no payment {payment_id}"))),
    }
}

/// A void that did not go through, as the internal routes answer it (the void route, and a
/// replay finishing a void under way).
fn void_failed(error: MoveError, payment_id: &str) -> Problem {
    match error {
        MoveError::Elsewhere(other) => {
            Problem::conflict(format!("a {other:?} payment cannot be voided").to_lowercase())
        }
        MoveError::InProgress(_) => {
            Problem::conflict(format!("{error}; try again shortly")).header(header::RETRY_AFTER, "2")
        }
        MoveError::Missing(_) => Problem::not_found(format!("no payment {payment_id}")),
        MoveError::Gateway(down) => gateway_down(down),
        MoveError::Store(error) => error.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::Fake;
    use crate::handlers::payments::get;
    use crate::store::memory::MemoryStore;
    use shared::events::Role;
    use testkit::requests::{as_caller, body, call, sample, with_body, with_path};

    fn ask(key: &str, token: &str) -> Request {
        let body_text = serde_json::json!({"idempotency_key": key, "order_id": "ord_1", "user_id": "usr_1", "amount_cents": 2500, "payment_token": token}).to_string();
        with_body(sample("http-post-internal-authorize.json"), &body_text)
    }

    #[tokio::test]
    async fn the_same_key_authorizes_once() {
        let store = MemoryStore::default();
        let handler = |r| authorize(&store, &Fake, r);
        let first = call(&handler, sample("http-post-internal-authorize.json")).await;
        assert_eq!(first.status(), 201);
        let again = call(&handler, sample("http-post-internal-authorize.json")).await;
        assert_eq!(body(&again), body(&first), "the same payment, not a second one");
        assert_eq!(body(&first)["status"], "authorized");
    }

    /// Defect (issue 16, found by the money-path simulation, seeds 605 and 852): a checkout
    /// voided its authorization after a shortage and lost the answer (the void claimed,
    /// Stripe never asked); its repeat asked again under the same key and was told the payment
    /// was authorized, so, stock having come back meanwhile, it placed an order on a payment
    /// being voided, and settlement waited for that void for ever.
    #[tokio::test(start_paused = true)]
    async fn a_key_asked_again_while_its_payment_is_being_voided_finishes_the_void_and_is_over() {
        let store = MemoryStore::on_tokio_clock();
        let handler = |r| authorize(&store, &Fake, r);
        let first = call(&handler, sample("http-post-internal-authorize.json")).await;
        let payment_id = body(&first)["payment_id"].as_str().unwrap().to_owned();
        assert!(store.transition(&payment_id, PaymentStatus::Authorized, PaymentStatus::Voiding).await.unwrap());

        let meanwhile = call(&handler, sample("http-post-internal-authorize.json")).await;
        assert_eq!(meanwhile.status(), 409, "being voided by whoever claimed it: {:?}", body(&meanwhile));
        assert!(!body(&meanwhile)["type"].as_str().unwrap().ends_with("/payment-not-live"), "not over yet");

        tokio::time::advance(std::time::Duration::from_secs(13)).await;
        let later = call(&handler, sample("http-post-internal-authorize.json")).await;
        assert_eq!(later.status(), 409);
        assert!(body(&later)["type"].as_str().unwrap().ends_with("/payment-not-live"), "{:?}", body(&later));
        let stored = store.get(&payment_id).await.unwrap().unwrap();
        assert_eq!(stored.payment.status, PaymentStatus::Voided, "the void the claim stood for is done");
    }

    /// Defect (issue 14.8): the same key with another request answered the first one's payment.
    #[tokio::test]
    async fn a_key_reused_for_another_request_is_422() {
        let store = MemoryStore::default();
        let handler = |r| authorize(&store, &Fake, r);
        assert_eq!(call(&handler, ask("k", "tok_visa")).await.status(), 201);
        let reused = call(&handler, ask("k", "tok_mastercard")).await;
        assert_eq!(reused.status(), 422);
        assert!(body(&reused)["type"].as_str().unwrap().ends_with("/idempotency-key-reused"));
    }

    /// Defect (issue 14.4): a voided authorization was replayed as a success.
    #[tokio::test]
    async fn a_voided_authorization_is_not_replayed_as_success() {
        let store = MemoryStore::default();
        let handler = |r| authorize(&store, &Fake, r);
        let payment = body(&call(&handler, ask("k", "tok_visa")).await);
        let id = payment["payment_id"].as_str().unwrap();
        let voiding = with_path(sample("http-post-internal-void.json"), "payment_id", id);
        assert_eq!(call(&|r| void(&store, &Fake, r), voiding).await.status(), 200);
        let again = call(&handler, ask("k", "tok_visa")).await;
        assert_eq!(again.status(), 409, "{:?}", body(&again));
        assert!(body(&again)["type"].as_str().unwrap().ends_with("/payment-not-live"));
    }

    /// Defect (issue 14.3): the answer of an authorization was lost after the gateway
    /// authorized (its outcome not recorded): a retry with the key, once the claim is stale,
    /// must resume it under the same payment id, not make a second authorization.
    #[tokio::test]
    async fn an_authorization_whose_outcome_was_not_recorded_is_resumed() {
        let store = MemoryStore::default();
        let request: AuthorizeRequest =
            serde_json::from_value(serde_json::json!({"idempotency_key": "k", "order_id": "ord_1", "user_id": "usr_1", "amount_cents": 2500, "payment_token": "tok_visa"})).unwrap();
        let claim =
            KeyOutcome::Pending { since: 0, payment_id: "pay_first".into(), fingerprint: fingerprint(&request) };
        assert_eq!(store.claim_key("k", &claim).await.unwrap(), None);
        let gateway = Asked::default();
        let resumed = call(&|r| authorize(&store, &gateway, r), ask("k", "tok_visa")).await;
        assert_eq!(resumed.status(), 201);
        assert_eq!(body(&resumed)["payment_id"], "pay_first");
        let fresh = call(&|r| authorize(&store, &gateway, r), ask("k2", "tok_visa")).await;
        assert_eq!(fresh.status(), 201);
        let asked = gateway.0.lock().unwrap().clone();
        assert_eq!(asked[0], ("pay_first".to_owned(), "ord_1".to_owned(), true), "told it resumes");
        assert_eq!(asked[1], (body(&fresh)["payment_id"].as_str().unwrap().to_owned(), "ord_1".to_owned(), false));
    }

    /// Defect (issue 16, found by the money-path simulation with a provider that ignores
    /// idempotency keys, as localstripe does; seed 9407): a second request with a key whose
    /// first request was still asking the provider resumed at once, found no PaymentIntent yet
    /// and created a second one, which held the customer's money with no payment recording it.
    #[tokio::test(start_paused = true)]
    async fn a_key_claimed_moments_ago_is_left_to_its_request_and_taken_over_once_its_lease_is_over() {
        let store = MemoryStore::on_tokio_clock();
        let request: AuthorizeRequest =
            serde_json::from_value(serde_json::json!({"idempotency_key": "k", "order_id": "ord_1", "user_id": "usr_1", "amount_cents": 2500, "payment_token": "tok_visa"})).unwrap();
        let since = store.now().timestamp();
        let claim = KeyOutcome::Pending { since, payment_id: "pay_first".into(), fingerprint: fingerprint(&request) };
        assert_eq!(store.claim_key("k", &claim).await.unwrap(), None, "the first request, still asking");
        let gateway = Asked::default();
        let handler = |r| authorize(&store, &gateway, r);

        let meanwhile = call(&handler, ask("k", "tok_visa")).await;
        assert_eq!(meanwhile.status(), 409, "{:?}", body(&meanwhile));
        assert_eq!(meanwhile.headers()["retry-after"], "2");
        assert!(gateway.0.lock().unwrap().is_empty(), "the provider is not asked twice at once");

        tokio::time::advance(std::time::Duration::from_secs(13)).await;
        let resumed = call(&handler, ask("k", "tok_visa")).await;
        assert_eq!(resumed.status(), 201);
        assert_eq!(body(&resumed)["payment_id"], "pay_first");
        assert_eq!(gateway.0.lock().unwrap().clone(), [("pay_first".to_owned(), "ord_1".to_owned(), true)]);
    }

    /// A request that got no answer from the provider is done asking: it gives its claim's
    /// lease up, so the customer's retry resumes at once instead of waiting out the lease.
    #[tokio::test(start_paused = true)]
    async fn a_request_the_provider_did_not_answer_leaves_its_claim_to_the_next_at_once() {
        let store = MemoryStore::on_tokio_clock();
        let gateway = Asked::default();
        gateway.1.store(true, std::sync::atomic::Ordering::SeqCst);
        let handler = |r| authorize(&store, &gateway, r);
        assert_eq!(call(&handler, ask("k", "tok_visa")).await.status(), 503);
        let retry = call(&handler, ask("k", "tok_visa")).await;
        assert_eq!(retry.status(), 201, "{:?}", body(&retry));
        let asked = gateway.0.lock().unwrap().clone();
        assert_eq!(asked.len(), 2);
        assert_eq!(asked[0].0, asked[1].0, "the same payment id");
        assert!(asked[1].2, "resumed: the provider is asked for what the first request may have made");
    }

    /// The fake gateway, noting the payment id, order id and `resumed` of each authorization;
    /// down for the next authorization while its flag is set.
    #[derive(Default)]
    struct Asked(std::sync::Mutex<Vec<(String, String, bool)>>, std::sync::atomic::AtomicBool);

    impl PaymentGateway for Asked {
        async fn authorize(
            &self,
            key: &str,
            ask: &Authorization<'_>,
        ) -> Result<Result<crate::clients::GatewayRef, Refusal>, GatewayDown> {
            self.0.lock().unwrap().push((ask.payment_id.to_owned(), ask.order_id.to_owned(), ask.resumed));
            if self.1.swap(false, std::sync::atomic::Ordering::SeqCst) {
                return Err(GatewayDown("no answer".into()));
            }
            Fake.authorize(key, ask).await
        }
        async fn void(&self, key: &str, reference: &crate::clients::GatewayRef) -> Result<(), GatewayDown> {
            Fake.void(key, reference).await
        }
        async fn settle(
            &self,
            key: &str,
            reference: &crate::clients::GatewayRef,
            token: &str,
        ) -> Result<Result<(), String>, GatewayDown> {
            Fake.settle(key, reference, token).await
        }
        async fn refund(
            &self,
            key: &str,
            reference: &crate::clients::GatewayRef,
            cents: u64,
        ) -> Result<(), GatewayDown> {
            Fake.refund(key, reference, cents).await
        }
    }

    #[tokio::test]
    async fn declines_are_402_every_time_and_bad_tokens_400() {
        let store = MemoryStore::default();
        let handler = |r| authorize(&store, &Fake, r);
        for _ in 0..2 {
            let declined = call(&handler, ask("k-decline", "tok_chargeDeclined")).await;
            assert_eq!(declined.status(), 402);
            assert!(body(&declined)["type"].as_str().unwrap().ends_with("/payment-declined"));
            // The second answer is the recorded decline: it keeps the code too.
            assert_eq!(body(&declined)["decline_code"], "generic_decline");
        }
        assert_eq!(call(&handler, ask("k-bad", "tok_nope")).await.status(), 400);
    }

    #[tokio::test]
    async fn voids_are_idempotent_and_owners_read_their_payments() {
        let store = MemoryStore::default();
        let payment = body(&call(&|r| authorize(&store, &Fake, r), ask("k1", "tok_visa")).await);
        let id = payment["payment_id"].as_str().unwrap();
        for _ in 0..2 {
            let voided =
                call(&|r| void(&store, &Fake, r), with_path(sample("http-post-internal-void.json"), "payment_id", id))
                    .await;
            assert_eq!(body(&voided)["status"], "voided");
        }
        let read =
            |user: &str| as_caller(with_path(sample("http-get-payment.json"), "payment_id", id), user, Role::Customer);
        assert_eq!(call(&|r| get(&store, r), read("usr_1")).await.status(), 200);
        assert_eq!(call(&|r| get(&store, r), read("usr_2")).await.status(), 404, "no existence leak");
    }
}
