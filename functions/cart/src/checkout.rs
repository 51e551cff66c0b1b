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
use shared::internal::CallError;
use shared::problem::json_body;
use shared::{CorrelationId, Problem, Reply};

use crate::domain::{
    CURRENCY, CartLine, Checkout, CheckoutRequest, CheckoutStatus, OrderLine, cart_key, cart_lines, idempotency_key,
    price, price_changes, total_cents,
};
use crate::downstream::{Abandoned, Authorization, Downstream, PaymentRequest, Stock};
use crate::handlers::store_failure;
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
    cid: CorrelationId,
) -> Result<Reply, Problem> {
    let customer = caller(&request)?;
    let ask: CheckoutRequest = json_body(&request)?;
    let key = match request.headers().get("idempotency-key").map(HeaderValue::to_str) {
        Some(Ok(header)) => idempotency_key(header).map_err(|e| Problem::bad_request(e.0))?,
        Some(Err(_)) => return Err(Problem::bad_request("Idempotency-Key must be visible ASCII")),
        None => {
            let (cart, version) = store.cart(&customer.user_id).await.map_err(store_failure)?;
            cart_key(&cart, version)
        }
    };

    let attempt = match begin(store, &customer.user_id, &key, &ask.payment_token).await? {
        Begun::Answered(reply) => return reply,
        Begun::Attempt(attempt) => attempt,
    };
    let mut running = attempt;
    let outcome = run(store, downstream, &mut running, &ask.payment_token, &cid).await;
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
async fn begin<S: CartStore>(store: &S, user_id: &str, key: &str, token: &str) -> Result<Begun, Problem> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_RUNNING;
    loop {
        let now = Utc::now();
        let previous = store.checkout(user_id, key).await.map_err(store_failure)?;
        if previous.as_ref().is_some_and(|p| !p.is_same_request(token)) {
            return Err(key_reused());
        }
        let next = match &previous {
            None => Checkout::start(user_id, key, token, 1, now, LEASE),
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
            Some(failed) if failed.status == CheckoutStatus::Retryable => {
                Checkout::start(user_id, key, token, failed.attempt + 1, now, LEASE)
            }
            // Died half-way, or interrupted by an outage: resume it with the same ids.
            Some(stale) if stale.lease_until <= now => Checkout { lease_until: now + LEASE, ..stale.clone() },
            // Still within its lease: wait for its answer. An attempt that keeps its lease
            // longer either runs on or died before it could give its lease back (its store
            // was down): it is resumed, which is safe even if it still runs, as every step
            // is idempotent on the attempt's ids.
            Some(running) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!(key, "a checkout kept its lease past the wait; resuming it");
                Checkout { lease_until: now + LEASE, ..running.clone() }
            }
            Some(_running) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if store.save_checkout(&next, previous.as_ref()).await.map_err(store_failure)? {
            return Ok(Begun::Attempt(next));
        }
        // Another request changed the record first: look again.
    }
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
            if !store.save_checkout(&attempt, Some(&running)).await.map_err(store_failure)? {
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
    let correlation = CorrelationId::generate();
    attempt.answer = Some(match &answer {
        Ok((status, order)) => (status.as_u16(), order.clone()),
        Err(problem) => (problem.status.as_u16(), problem.to_json(&correlation)),
    });
    if !store.save_checkout(&attempt, Some(&running)).await.map_err(store_failure)? {
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
    cid: &CorrelationId,
) -> Result<Vec<OrderLine>, Outcome> {
    if let Some(snapshot) = &attempt.snapshot {
        return Ok(snapshot.clone());
    }
    let (cart, version) = store.cart(&attempt.user_id).await.map_err(|e| Outcome::Retryable(store_failure(e)))?;
    if cart.items.is_empty() {
        return Err(Outcome::Retryable(cart_empty()));
    }
    let ids: Vec<String> = cart.items.iter().map(|l| l.product_id.clone()).collect();
    let catalogue = downstream.lookup(&ids, cid).await.map_err(|e| Outcome::Retryable(e.into()))?;
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
        if !store.save_cart(&repriced, version).await.map_err(|e| Outcome::Retryable(store_failure(e)))? {
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
    if !store.save_checkout(&next, Some(attempt)).await.map_err(|e| Outcome::Retryable(store_failure(e)))? {
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
    cid: &CorrelationId,
) -> Outcome {
    let lines = match lines_to_buy(store, downstream, attempt, cid).await {
        Ok(lines) => lines,
        Err(outcome) => return outcome,
    };
    let total_cents = total_cents(&lines);
    let bought = cart_lines(&lines);

    // 1. Authorize the payment (idempotent on the attempt's key).
    let payment_id = match downstream.authorize(&payment_request(attempt, &lines, token), cid).await {
        Ok(Authorization::Authorized { payment_id }) => payment_id,
        // Declined or not a valid token: nothing is held. A client's key keeps its answer; a
        // cart's does not, so another card can be tried on the same cart.
        Ok(Authorization::Refused(problem)) if attempt.is_explicit() => return Outcome::Final(Err(problem)),
        Ok(Authorization::Refused(problem)) => return Outcome::Retryable(problem),
        // The authorization under this attempt's key has ended: its order was made and its
        // payment ended since (a failed settlement, a cancel), or the reconciler undid the
        // attempt. Only the Order service knows which; asking gives the id up if no order has it.
        Ok(Authorization::Over) => {
            return match downstream.abandon_order(&attempt.order_id, cid).await {
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
    match downstream.reserve(&reservation_id, &bought, cid).await {
        Ok(Stock::Reserved) => {}
        Ok(Stock::Short(problem)) => {
            // A definite no: nothing was reserved, so the authorization is given back. Until
            // it is, the attempt stays open: a repeat (or the reconciler) voids it again.
            if let Err(error) = downstream.void(&payment_id, cid).await {
                return Outcome::Interrupted(interrupted(&error));
            }
            return Outcome::Final(Err(problem));
        }
        Err(error) => return Outcome::Interrupted(interrupted(&error)),
    }

    // 3. Create the order (which publishes order.created), idempotent on the order id: if
    // the answer is lost, the next request with this key asks again and gets the order.
    let request = json!({
        "order_id": attempt.order_id,
        "user_id": attempt.user_id,
        "items": lines,
        "total_cents": total_cents,
        "currency": CURRENCY,
        "payment_id": payment_id,
        "reservation_id": reservation_id,
    });
    let order = match downstream.create_order(&request, cid).await {
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
pub(crate) fn payment_request(attempt: &Checkout, lines: &[OrderLine], token: &str) -> PaymentRequest {
    PaymentRequest {
        idempotency_key: attempt.payment_key(),
        order_id: attempt.order_id.clone(),
        user_id: attempt.user_id.clone(),
        amount_cents: total_cents(lines),
        currency: CURRENCY,
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
