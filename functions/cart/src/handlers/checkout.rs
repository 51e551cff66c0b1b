//! `POST /cart/checkout`: the chain the customer waits for, and nothing else.
//!
//! compare the cart's prices with the catalogue -> authorize the payment -> reserve the stock
//! -> create the order -> empty the cart, then 201 with the order.
//!
//! A checkout is recorded under its key (the `Idempotency-Key`, or without one the cart's:
//! see `domain::cart_key`), with the ids its attempt uses; every step is idempotent on those
//! ids. The same key gets the same answer; while the first request still runs, a second
//! waits for it (a few seconds, then resumes it: see `begin`).
//!
//! A definite "no" undoes what was done (a shortage voids the authorization): 402, 409, and
//! the answer is recorded. Nothing done yet (an empty cart, a changed price, the catalogue
//! or cart store down): the key is free to try again. An ambiguous failure (a timeout, a 5xx,
//! an open breaker) may have happened all the same, so it is never undone blind: the attempt
//! stays as it is, 503, and the next request with the key resumes it with the same ids.

use std::time::Duration;

use chrono::Utc;
use lambda_http::Request;
use lambda_http::http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use shared::caller::caller;
use shared::contracts::{AuthorizeRequest, NewOrder, OrderLine};
use shared::http::{correlation_id, json_body};
use shared::internal::CallError;
use shared::{CURRENCY, CorrelationId, Problem, Reply};

use crate::clients::{Abandoned, Authorization, Downstream, Stock};
use crate::domain::{
    CartLine, Checkout, CheckoutRequest, CheckoutStatus, cart_key, cart_lines, idempotency_key, price, price_changes,
    reservation, total_cents,
};
use crate::store::CartStore;

/// How long an attempt may run before another request may take it over: longer than the
/// function's timeout (25 s), so a live attempt is never taken over.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(40);
/// How long a repeated request waits for the first one to answer.
const WAIT_FOR_RUNNING: Duration = Duration::from_secs(8);

pub async fn checkout<S: CartStore, D: Downstream>(
    store: &S,
    downstream: &D,
    request: Request,
) -> Result<Reply, Problem> {
    let customer = caller(&request)?;
    let ask = json_body::<CheckoutRequest>(&request)?.checked()?;
    let key = match request.headers().get("idempotency-key").map(HeaderValue::to_str) {
        Some(Ok(header)) => idempotency_key(header)?,
        Some(Err(_)) => return Err(Problem::bad_request("Idempotency-Key must be visible ASCII")),
        None => {
            let (cart, version) = store.cart(&customer.user_id).await?;
            cart_key(&cart, version)
        }
    };

    let attempt = match begin(store, &customer.user_id, &key, &ask).await? {
        Begun::Answered(reply) => return reply,
        Begun::Attempt(attempt) => attempt,
    };
    let mut running = attempt;
    let token = running.payment_token.clone();
    let outcome = run(store, downstream, &mut running, &token, &correlation_id(&request)).await;
    finish(store, running, outcome).await
}

enum Begun {
    /// This key was answered before (or while we waited): the same answer.
    Answered(Result<Reply, Problem>),
    Attempt(Checkout),
}

fn key_reused() -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "Idempotency-Key reused",
        "this Idempotency-Key was used for another request; use a new key for a new request",
    )
}

/// Finds or starts this key's attempt.
async fn begin<S: CartStore>(store: &S, user_id: &str, key: &str, ask: &CheckoutRequest) -> Result<Begun, Problem> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_RUNNING;
    let (token, address) = (ask.payment_token.as_str(), ask.shipping_address.as_ref());
    let start = |attempt: u32, now| Checkout {
        shipping_address: address.cloned(),
        ..Checkout::start(user_id, key, token, attempt, now, LEASE)
    };
    loop {
        let now = Utc::now();
        let previous = store.checkout(user_id, key).await?;
        if previous.as_ref().is_some_and(|p| !p.is_same_request(token, address)) {
            return Err(key_reused());
        }
        let next = match &previous {
            None => start(1, now),
            // Being undone by the reconciler: a new attempt may start once it is done.
            Some(undoing) if undoing.status == CheckoutStatus::Abandoning => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(Problem::conflict("this checkout is being undone; try again shortly")
                        .header(header::RETRY_AFTER, "2"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Some(done) if done.status == CheckoutStatus::Done => return Ok(Begun::Answered(replay(done))),
            Some(failed) if failed.status == CheckoutStatus::Retryable => start(failed.attempt + 1, now),
            // Died half-way, or interrupted by an outage: resume it with the same ids.
            Some(stale) if stale.lease_until <= now => resumed(stale, ask, now),
            // Still within its lease: wait for its answer. An attempt that keeps its lease
            // longer either runs on or died before it could give its lease back (its store
            // was down): it is resumed, which is safe even if it still runs, as every step
            // is idempotent on the attempt's ids.
            Some(running) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!(key, "a checkout kept its lease past the wait; resuming it");
                resumed(running, ask, now)
            }
            Some(_running) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if store.save_checkout(&next, previous.as_ref()).await? {
            return Ok(Begun::Attempt(next));
        }
        // Another request changed the record first: look again.
    }
}

/// An attempt taken up again by request `ask`. Once it has recorded what it buys it may have
/// asked for the payment under its key, which the payment service holds to that request, and
/// for the order: it goes on with the card and the address it began with (a cart's key may
/// be tried with another card or address, which the next attempt then takes). Before that,
/// it takes the request's.
fn resumed(attempt: &Checkout, ask: &CheckoutRequest, now: chrono::DateTime<Utc>) -> Checkout {
    let payment_token = match &attempt.snapshot {
        Some(_) if !attempt.payment_token.is_empty() => attempt.payment_token.clone(),
        _ => ask.payment_token.clone(),
    };
    let shipping_address = match &attempt.snapshot {
        Some(_) => attempt.shipping_address.clone(),
        None => ask.shipping_address.clone(),
    };
    Checkout { lease_until: now + LEASE, payment_token, shipping_address, ..attempt.clone() }
}

/// The answer recorded for a finished checkout.
fn replay(done: &Checkout) -> Result<Reply, Problem> {
    let Some((status, body)) = &done.answer else { return Err(Problem::internal()) };
    let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_success() {
        Ok(Reply::json(status, body).header(header::LOCATION, format!("/orders/{}", done.order_id)))
    } else {
        Err(Problem::from_json(body).unwrap_or_else(Problem::internal))
    }
}

/// How an attempt ended.
enum Outcome {
    /// For good (an order, a decline, a shortage): recorded and replayed.
    Final(Result<(StatusCode, Value), Problem>),
    /// Nothing was done (an empty cart, a changed price, a store or the catalogue down):
    /// this key may try again, as a new attempt.
    Retryable(Problem),
    /// A step may or may not have happened (timeout, 5xx, open breaker): the attempt stays
    /// as it is, free to be resumed at once by the next request with this key.
    Interrupted(Problem),
}

/// The answer to an interrupted attempt: what the customer should do next.
fn interrupted(error: &CallError) -> Problem {
    tracing::warn!(%error, "checkout interrupted; it resumes with the same ids when tried again");
    Problem::unavailable(format!(
        "the {} service did not answer; nothing was charged. Try again (with the same Idempotency-Key, if you sent \
         one) to finish this checkout",
        error.service()
    ))
    .header(header::RETRY_AFTER, "1")
}

async fn finish<S: CartStore>(store: &S, running: Checkout, outcome: Outcome) -> Result<Reply, Problem> {
    let mut attempt = running.clone();
    let answer = match outcome {
        Outcome::Retryable(problem) => {
            attempt.status = CheckoutStatus::Retryable;
            if !store.save_checkout(&attempt, Some(&running)).await? {
                tracing::warn!(key = %attempt.key, "checkout record changed meanwhile; left as it is");
            }
            return Err(problem);
        }
        Outcome::Interrupted(problem) => {
            attempt.lease_until = Utc::now();
            // If this write is lost too, the lease runs out and the attempt is resumed then.
            if let Err(error) = store.save_checkout(&attempt, Some(&running)).await {
                tracing::warn!(%error, key = %attempt.key, "could not release an interrupted checkout's lease");
            }
            return Err(problem);
        }
        Outcome::Final(answer) => answer,
    };
    attempt.status = CheckoutStatus::Done;
    let correlation_id = CorrelationId::generate();
    attempt.answer = Some(match &answer {
        Ok((status, order)) => (status.as_u16(), order.clone()),
        Err(problem) => (problem.status.as_u16(), problem.to_json(&correlation_id)),
    });
    if !store.save_checkout(&attempt, Some(&running)).await? {
        // Only if this attempt outlived its lease; the same ids make both answers agree.
        tracing::warn!(key = %attempt.key, "checkout record changed meanwhile; answer not recorded");
    }
    let (status, order) = answer?;
    Ok(Reply::json(status, &order).header(header::LOCATION, format!("/orders/{}", attempt.order_id)))
}

fn cart_empty() -> Problem {
    Problem::new(StatusCode::CONFLICT, "cart-empty", "The cart is empty", "there is nothing in the cart to check out")
}

fn shortage_problem() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "insufficient-stock",
        "Not enough stock",
        "some products do not have enough stock",
    )
}

/// What this attempt buys: its snapshot when resumed, else the cart priced now (and then
/// recorded as its snapshot). `Err` is the attempt's outcome already: nothing has been done.
async fn lines_to_buy<S: CartStore, D: Downstream>(
    store: &S,
    downstream: &D,
    attempt: &mut Checkout,
    correlation_id: &CorrelationId,
) -> Result<Vec<OrderLine>, Outcome> {
    if let Some(snapshot) = &attempt.snapshot {
        return Ok(snapshot.clone());
    }
    let (cart, version) = store.cart(&attempt.user_id).await.map_err(|e| Outcome::Retryable(e.into()))?;
    if cart.items.is_empty() {
        return Err(Outcome::Retryable(cart_empty()));
    }
    let ids: Vec<String> = cart.items.iter().map(|l| l.product_id.clone()).collect();
    let catalogue = downstream.lookup(&ids, correlation_id).await.map_err(|e| Outcome::Retryable(e.into()))?;
    let priced = price(&cart, &catalogue);
    if priced.items.len() < cart.items.len() {
        let gone: Vec<Value> = cart
            .items
            .iter()
            .filter(|l| !priced.items.iter().any(|p| p.product_id == l.product_id))
            .map(|l| json!({"product_id": l.product_id, "requested": l.quantity, "available": 0}))
            .collect();
        return Err(Outcome::Retryable(shortage_problem().with("shortages", gone)));
    }
    // A price changed since the line was put in the cart: the cart shows the new prices and
    // nothing is charged; the customer decides again (docs/api.md, Checkout).
    let (changes, repriced) = price_changes(&cart, &catalogue);
    if !changes.is_empty() {
        if !store.save_cart(&repriced, version).await.map_err(|e| Outcome::Retryable(e.into()))? {
            return Err(Outcome::Retryable(Problem::conflict("the cart changed during checkout; try again")));
        }
        let problem = Problem::new(
            StatusCode::CONFLICT,
            "price-changed",
            "A price changed",
            "a price changed since the item was put in the cart; the cart shows the new prices, nothing was charged",
        );
        return Err(Outcome::Retryable(problem.with("changes", serde_json::to_value(changes).unwrap_or_default())));
    }
    let lines = priced.order_lines();
    let next = Checkout { snapshot: Some(lines.clone()), ..attempt.clone() };
    if !store.save_checkout(&next, Some(attempt)).await.map_err(|e| Outcome::Retryable(e.into()))? {
        return Err(Outcome::Retryable(Problem::conflict("this checkout was taken over by another request")));
    }
    *attempt = next;
    Ok(lines)
}

async fn run<S: CartStore, D: Downstream>(
    store: &S,
    downstream: &D,
    attempt: &mut Checkout,
    token: &str,
    correlation_id: &CorrelationId,
) -> Outcome {
    let lines = match lines_to_buy(store, downstream, attempt, correlation_id).await {
        Ok(lines) => lines,
        Err(outcome) => return outcome,
    };
    let total_cents = total_cents(&lines);
    let bought = cart_lines(&lines);

    // 1. Authorize the payment (idempotent on the attempt's key).
    let payment_id = match downstream.authorize(&payment_request(attempt, &lines, token), correlation_id).await {
        Ok(Authorization::Authorized { payment_id }) => payment_id,
        // Declined or not a valid token: nothing is held. A client's key keeps its answer; a
        // cart's does not, so another card can be tried on the same cart.
        Ok(Authorization::Refused(problem)) if attempt.is_explicit() => return Outcome::Final(Err(problem)),
        Ok(Authorization::Refused(problem)) => return Outcome::Retryable(problem),
        // The authorization under this attempt's key has ended: its order was made and its
        // payment ended since (a failed settlement, a cancel), or the reconciler undid the
        // attempt. Only the Order service knows which; asking gives the id up if no order has it.
        Ok(Authorization::Over) => {
            return match downstream.abandon_order(&attempt.order_id, correlation_id).await {
                Ok(Abandoned::Exists(order)) => {
                    empty_cart(store, &attempt.user_id, &bought, &attempt.key).await;
                    Outcome::Final(Ok((StatusCode::CREATED, order)))
                }
                Ok(Abandoned::Abandoned) => {
                    Outcome::Retryable(Problem::conflict("this checkout was undone meanwhile; try again"))
                }
                Err(error) => Outcome::Interrupted(interrupted(&error)),
            };
        }
        Err(error) => return Outcome::Interrupted(interrupted(&error)),
    };

    // 2. Reserve the stock, all lines or none (idempotent on the reservation id).
    let reservation_id = attempt.reservation_id();
    match downstream.reserve(&reservation(reservation_id.clone(), &lines), correlation_id).await {
        Ok(Stock::Reserved) => {}
        Ok(Stock::Short(problem)) => {
            // A definite no: nothing was reserved, so the authorization is given back. Until
            // it is, the attempt stays open: a repeat (or the reconciler) voids it again.
            if let Err(error) = downstream.void(&payment_id, correlation_id).await {
                return Outcome::Interrupted(interrupted(&error));
            }
            return Outcome::Final(Err(problem));
        }
        Err(error) => return Outcome::Interrupted(interrupted(&error)),
    }

    // 3. Create the order (which publishes order.created), idempotent on the order id: if
    // the answer is lost, the next request with this key asks again and gets the order.
    let request = NewOrder {
        order_id: attempt.order_id.clone(),
        user_id: attempt.user_id.clone(),
        items: lines,
        total_cents,
        currency: CURRENCY.to_owned(),
        payment_id,
        reservation_id,
        shipping_address: attempt.shipping_address.clone(),
    };
    let order = match downstream.create_order(&request, correlation_id).await {
        Ok(order) => order,
        Err(error) => return Outcome::Interrupted(interrupted(&error)),
    };

    // 4. Empty the cart of what was bought (what was added meanwhile stays).
    empty_cart(store, &attempt.user_id, &bought, &attempt.key).await;
    tracing::info!(order_id = %attempt.order_id, total_cents, lines = bought.len(), "checkout complete");
    Outcome::Final(Ok((StatusCode::CREATED, order)))
}

/// The authorization an attempt asks for. The reconciler asks it again to learn what it did,
/// so both build it here: the payment service refuses the key with any other request.
pub(crate) fn payment_request(attempt: &Checkout, lines: &[OrderLine], token: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        idempotency_key: attempt.payment_key(),
        order_id: attempt.order_id.clone(),
        user_id: attempt.user_id.clone(),
        amount_cents: total_cents(lines),
        currency: CURRENCY.to_owned(),
        payment_token: token.to_owned(),
    }
}

/// Empties the cart of what checkout `key` bought; a failure leaves the cart as it is (its
/// unchanged version then names the same checkout).
pub(crate) async fn empty_cart<S: CartStore>(store: &S, user_id: &str, bought: &[CartLine], key: &str) {
    for _ in 0..3 {
        match store.cart(user_id).await {
            // Emptied by this checkout already (a resumed attempt).
            Ok((cart, _)) if cart.checked_out.as_deref() == Some(key) => return,
            Ok((cart, version)) => match store.save_cart(&cart.without(bought, key), version).await {
                Ok(true) => return,
                Ok(false) => continue,
                Err(error) => tracing::error!(%error, "could not empty the cart after checkout"),
            },
            Err(error) => tracing::error!(%error, "could not read the cart after checkout"),
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use serde_json::json;
    use testkit::requests::body;

    use super::*;
    use crate::clients::fakes::Fake;
    use crate::handlers::test_support::{USER, cart_of, checkout_to, checkout_with, put};
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn a_checkout_places_the_order_takes_stock_and_empties_the_cart() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5), ("prd_b", 500, 1)]));
        put(&store, &fake, "prd_a", 2).await;
        put(&store, &fake, "prd_b", 1).await;
        let placed = checkout_with(&store, &fake, "tok_visa", Some("k1")).await;
        assert_eq!(placed.status(), 201);
        let order = body(&placed);
        assert_eq!(order["total_cents"], 3098);
        assert_eq!(placed.headers()["location"], format!("/orders/{}", order["order_id"].as_str().unwrap()).as_str());
        assert_eq!((fake.stock_of("prd_a"), fake.stock_of("prd_b")), (3, 0));
        assert_eq!(cart_of(&store, &fake).await["items"], json!([]));

        let again = checkout_with(&store, &fake, "tok_visa", Some("k1")).await;
        assert_eq!(again.status(), 201);
        assert_eq!(body(&again), order, "the same order");
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1, "charged once");
    }

    #[tokio::test]
    async fn a_decline_is_402_and_touches_nothing() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
        put(&store, &fake, "prd_a", 2).await;
        let declined = checkout_with(&store, &fake, "tok_chargeDeclined", Some("k")).await;
        assert_eq!(declined.status(), 402);
        assert!(body(&declined)["type"].as_str().unwrap().ends_with("/payment-declined"));
        assert_eq!(fake.stock_of("prd_a"), 5);
        assert_eq!(cart_of(&store, &fake).await["items"].as_array().unwrap().len(), 1, "the cart is kept");
        assert_eq!(
            checkout_with(&store, &fake, "tok_chargeDeclined", Some("k")).await.status(),
            402,
            "the same key, the same answer"
        );
        assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 422, "another request");
        // Without a key, another card may be tried on the same cart.
        assert_eq!(checkout_with(&store, &fake, "tok_chargeDeclined", None).await.status(), 402);
        assert_eq!(checkout_with(&store, &fake, "tok_visa", None).await.status(), 201);
    }

    #[tokio::test]
    async fn a_shortage_is_409_and_the_authorization_is_voided() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 1)]));
        put(&store, &fake, "prd_a", 3).await;
        let short = checkout_with(&store, &fake, "tok_visa", None).await;
        assert_eq!(short.status(), 409);
        assert_eq!(body(&short)["shortages"], json!([{"product_id": "prd_a", "requested": 3, "available": 1}]));
        assert_eq!(fake.voids.load(Ordering::SeqCst), 1);
        assert_eq!(fake.stock_of("prd_a"), 1);
    }

    /// Defect (issue 16, found by the money-path simulation, seed 2359): a cart's checkout
    /// interrupted after its authorization was asked, tried again with another card (a cart's
    /// key allows it), resumed the attempt with the new card: the payment service refuses the
    /// attempt's key with another request (422), so neither the repeat nor the reconciler
    /// (which asks with the recorded card) could finish or undo it.
    #[tokio::test]
    async fn a_resumed_attempt_pays_with_the_card_it_asked_the_payment_service_with() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
        put(&store, &fake, "prd_a", 1).await;
        fake.order_down.store(true, Ordering::SeqCst);
        assert_eq!(checkout_with(&store, &fake, "tok_visa", None).await.status(), 503, "authorized, no order yet");
        fake.order_down.store(false, Ordering::SeqCst);
        let again = checkout_with(&store, &fake, "tok_mastercard", None).await;
        assert_eq!(again.status(), 201, "the attempt goes through as it began: {:?}", body(&again));
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_outage_is_503_and_the_same_key_resumes_the_attempt_with_its_ids() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
        put(&store, &fake, "prd_a", 2).await;
        fake.payment_down.store(true, Ordering::SeqCst);
        let down = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
        assert_eq!(down.status(), 503);
        assert_eq!(down.headers()["content-type"], "application/problem+json");
        assert_eq!(fake.stock_of("prd_a"), 5, "nothing reserved");

        fake.payment_down.store(false, Ordering::SeqCst);
        fake.order_down.store(true, Ordering::SeqCst);
        assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 503);
        assert_eq!(fake.voids.load(Ordering::SeqCst), 0, "the order may exist: nothing undone blind");

        fake.order_down.store(false, Ordering::SeqCst);
        assert_eq!(
            checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(),
            201,
            "a retry with the same key finishes the checkout"
        );
        assert_eq!(fake.stock_of("prd_a"), 3, "one reservation");
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1, "one authorization");
        assert_eq!(fake.orders.lock().unwrap().len(), 1);
    }

    /// Defect (issue 14.1): the order was stored but its answer was lost; checkout released the
    /// stock and voided the payment, leaving an order to settle with no stock behind it.
    #[tokio::test]
    async fn an_order_whose_answer_was_lost_is_resumed_never_undone() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
        put(&store, &fake, "prd_a", 1).await;
        fake.order_answers_lost.store(2, Ordering::SeqCst);
        let lost = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
        assert_eq!(lost.status(), 503);
        assert_eq!(fake.voids.load(Ordering::SeqCst), 0, "the payment of a stored order is not voided");
        assert_eq!(fake.stock_of("prd_a"), 4, "its stock stays reserved");
        let mut resumed = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
        if resumed.status() == 503 {
            resumed = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
        }
        assert_eq!(resumed.status(), 201);
        let order = body(&resumed);
        assert!(fake.orders.lock().unwrap().contains_key(order["order_id"].as_str().unwrap()), "the stored order");
        assert_eq!(fake.orders.lock().unwrap().len(), 1);
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1, "charged once");
        assert_eq!(fake.stock_of("prd_a"), 4);
    }

    /// Defect (found by the money simulation, seed 1217): the order was stored but its answer
    /// lost, and its payment ended meanwhile (the settlement failed); the repeat found the
    /// authorization over, took the key for free and bought a second time.
    #[tokio::test]
    async fn a_repeat_that_finds_its_payment_over_answers_the_order_it_made() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
        put(&store, &fake, "prd_a", 1).await;
        fake.order_answers_lost.store(1, Ordering::SeqCst);
        assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 503);
        // Settlement failed in the background: the payment is over.
        let payment_id = fake.payments.lock().unwrap().values().next().unwrap().clone();
        fake.voided.lock().unwrap().insert(payment_id);
        let again = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
        assert_eq!(again.status(), 201, "the order it made");
        assert!(fake.orders.lock().unwrap().contains_key(body(&again)["order_id"].as_str().unwrap()));
        let once_more = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
        assert_eq!(body(&once_more)["order_id"], body(&again)["order_id"]);
        assert_eq!(fake.orders.lock().unwrap().len(), 1, "one order");
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1, "one authorization");
        assert_eq!(fake.stock_of("prd_a"), 4);
    }

    /// Defect (issue 14.5): two checkouts of the same cart without a key (a double click) made
    /// two orders and two charges.
    #[tokio::test]
    async fn a_double_click_without_a_key_places_one_order_charged_once() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
        put(&store, &fake, "prd_a", 1).await;
        fake.slow_payment.store(true, Ordering::SeqCst);
        let (first, second) = tokio::join!(checkout_with(&store, &fake, "tok_visa", None), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            checkout_with(&store, &fake, "tok_visa", None).await
        });
        assert_eq!((first.status(), second.status()), (StatusCode::CREATED, StatusCode::CREATED));
        assert_eq!(body(&first), body(&second), "the same order");
        // Once the first has emptied the cart, a repeat is still that checkout.
        let third = checkout_with(&store, &fake, "tok_visa", None).await;
        assert_eq!(third.status(), 201);
        assert_eq!(body(&third), body(&first));
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1, "charged once");
        assert_eq!(fake.stock_of("prd_a"), 4, "one unit taken");
        assert_eq!(fake.orders.lock().unwrap().len(), 1);

        // A new cart is a new checkout.
        put(&store, &fake, "prd_a", 2).await;
        let next = checkout_with(&store, &fake, "tok_visa", None).await;
        assert_eq!(next.status(), 201);
        assert_ne!(body(&next)["order_id"], body(&first)["order_id"]);
        assert_eq!(fake.stock_of("prd_a"), 2);
    }

    /// Defect (issue 14.6): checkout charged the catalogue's price of the moment.
    #[tokio::test]
    async fn a_changed_price_is_409_updates_the_cart_and_charges_nothing() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5), ("prd_b", 500, 5)]));
        put(&store, &fake, "prd_a", 2).await;
        put(&store, &fake, "prd_b", 1).await;
        fake.set_price("prd_a", 1499);
        assert_eq!(cart_of(&store, &fake).await["total_cents"], 3098, "the cart keeps the prices it was filled at");
        let changed = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
        assert_eq!(changed.status(), 409);
        let problem = body(&changed);
        assert!(problem["type"].as_str().unwrap().ends_with("/price-changed"), "{problem}");
        assert_eq!(
            problem["changes"],
            json!([{"product_id": "prd_a", "old_unit_price_cents": 1299, "new_unit_price_cents": 1499}])
        );
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 0, "nothing charged");
        assert_eq!(fake.stock_of("prd_a"), 5, "nothing reserved");
        assert_eq!(cart_of(&store, &fake).await["total_cents"], 3498, "the cart shows the new prices");
        let placed = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
        assert_eq!(placed.status(), 201, "the same key, now at the new prices");
        assert_eq!(body(&placed)["total_cents"], 3498);
    }

    /// Defect (issue 14.8): a key reused with another request replayed the old answer.
    #[tokio::test]
    async fn a_key_reused_for_another_request_is_422() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
        put(&store, &fake, "prd_a", 1).await;
        assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 201);
        let reused = checkout_with(&store, &fake, "tok_mastercard", Some("k")).await;
        assert_eq!(reused.status(), 422);
        assert!(body(&reused)["type"].as_str().unwrap().ends_with("/idempotency-key-reused"));
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1);
    }

    fn address(country: &str) -> serde_json::Value {
        json!({"name": "Ada Lovelace", "line1": "12 Analytical Row", "city": "London", "postal_code": "EC1A 1BB",
               "country": country})
    }

    #[tokio::test]
    async fn the_shipping_address_is_checked_sent_with_the_order_and_bound_to_the_key() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
        put(&store, &fake, "prd_a", 1).await;
        for bad in [
            address("XX"),
            address("gb"),
            json!({"name": "Ada"}),
            {
                let mut blank = address("GB");
                blank["line1"] = json!("   ");
                blank
            },
            {
                let mut long = address("GB");
                long["postal_code"] = json!("9".repeat(21));
                long
            },
        ] {
            let refused =
                checkout_to(&store, &fake, json!({"payment_token": "tok_visa", "shipping_address": bad}), Some("k"))
                    .await;
            assert_eq!(refused.status(), 400, "{bad}");
            assert_eq!(refused.headers()["content-type"], "application/problem+json");
        }
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 0, "nothing charged");

        let mut home = address("GB");
        home["name"] = json!("  Ada Lovelace ");
        let placed =
            checkout_to(&store, &fake, json!({"payment_token": "tok_visa", "shipping_address": home}), Some("k")).await;
        assert_eq!(placed.status(), 201, "{:?}", body(&placed));
        let sent = fake.orders.lock().unwrap().values().next().unwrap().clone();
        let mut expected = address("GB");
        expected["line2"] = serde_json::Value::Null;
        assert_eq!(sent["shipping_address"], expected, "checked and trimmed, to the order");
        let again = checkout_to(
            &store,
            &fake,
            json!({"payment_token": "tok_visa", "shipping_address": address("GB")}),
            Some("k"),
        )
        .await;
        assert_eq!(again.status(), 201, "the same request");
        let elsewhere = checkout_to(
            &store,
            &fake,
            json!({"payment_token": "tok_visa", "shipping_address": address("FR")}),
            Some("k"),
        )
        .await;
        assert_eq!(elsewhere.status(), 422, "the same key with another address is another request");
        let nowhere = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
        assert_eq!(nowhere.status(), 422, "or with none");
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_repeat_while_the_first_runs_waits_for_its_answer() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
        put(&store, &fake, "prd_a", 1).await;
        fake.slow_payment.store(true, Ordering::SeqCst);
        let (first, second) = tokio::join!(checkout_with(&store, &fake, "tok_visa", Some("k")), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            checkout_with(&store, &fake, "tok_visa", Some("k")).await
        });
        assert_eq!((first.status(), second.status()), (StatusCode::CREATED, StatusCode::CREATED));
        assert_eq!(body(&first), body(&second));
        assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1);
        assert_eq!(fake.stock_of("prd_a"), 4);
    }

    /// Defect (issue 14.6): an empty cart was a 400, though the request is valid.
    #[tokio::test]
    async fn an_empty_cart_is_409_cart_empty_and_a_bad_key_400() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 100, 5)]));
        for key in [None, Some("k")] {
            let empty = checkout_with(&store, &fake, "tok_visa", key).await;
            assert_eq!(empty.status(), 409);
            assert!(body(&empty)["type"].as_str().unwrap().ends_with("/cart-empty"));
        }
        put(&store, &fake, "prd_a", 1).await;
        assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 201, "the key was not used up");
        assert_eq!(checkout_with(&store, &fake, "tok_visa", Some(&"k".repeat(65))).await.status(), 400);
    }

    #[tokio::test]
    async fn an_attempt_that_died_half_way_is_resumed_with_what_it_priced() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5), ("prd_b", 500, 5)]));
        // An attempt priced 1 x prd_a, then its function died (its lease has run out).
        let then = chrono::Utc::now() - chrono::Duration::minutes(5);
        let mut died = Checkout::start(USER, "key:k", "tok_visa", 1, then, chrono::Duration::seconds(40));
        died.snapshot = Some(vec![OrderLine {
            product_id: "prd_a".into(),
            seller_id: "usr_seller".into(),
            name: "PRD_A".into(),
            unit_price_cents: 1299,
            quantity: 1,
        }]);
        assert!(store.save_checkout(&died, None).await.unwrap());
        // Meanwhile the cart changed.
        put(&store, &fake, "prd_b", 3).await;

        let resumed = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
        assert_eq!(resumed.status(), 201);
        let order = body(&resumed);
        assert_eq!(order["order_id"], died.order_id.as_str(), "the same order id");
        assert_eq!(order["total_cents"], 1299, "what the attempt priced, not the cart now");
        assert_eq!((fake.stock_of("prd_a"), fake.stock_of("prd_b")), (4, 5));
    }
}
