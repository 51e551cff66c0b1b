//! `POST /cart/checkout`: the chain the customer waits for, and nothing else.
//!
//! authorize the payment -> reserve the stock -> create the order -> empty the cart, then 201
//! with the order. A step that fails undoes the earlier ones (release the reservation, void
//! the authorization): 402 declined, 409 not enough stock, 503 a service is down, and
//! nothing stays reserved or charged.
//!
//! The `Idempotency-Key` (per user) makes it safe to repeat: a record of the checkout
//! remembers the answer and the ids each attempt uses, and every step is idempotent on
//! those ids. The same key gets the same answer; while the first request still runs, a
//! second waits for it; one that died half-way (its lease expired) is resumed with the same
//! ids; one that failed because a service was down is undone and may be tried again, as a
//! new attempt with new ids.

use std::time::Duration;

use chrono::Utc;
use lambda_http::Request;
use lambda_http::http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use shared::caller::caller;
use shared::problem::json_body;
use shared::{CorrelationId, Problem, Reply};

use crate::domain::{CURRENCY, CartLine, Checkout, CheckoutRequest, CheckoutStatus, OrderLine, idempotency_key, price};
use crate::downstream::{Authorization, Downstream, PaymentRequest, Stock};
use crate::handlers::store_failure;
use crate::store::CartStore;

/// How long an attempt may run before another request may take it over: longer than the
/// function's timeout (25 s), so a live attempt is never taken over.
const LEASE: chrono::Duration = chrono::Duration::seconds(40);
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
    let key_header = request.headers().get("idempotency-key").map(HeaderValue::to_str).transpose().ok().flatten();
    if request.headers().contains_key("idempotency-key") && key_header.is_none() {
        return Err(Problem::bad_request("Idempotency-Key must be visible ASCII"));
    }
    let key = idempotency_key(key_header).map_err(|e| Problem::bad_request(e.0))?;

    let attempt = match begin(store, &customer.user_id, &key).await? {
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

/// Finds or starts this key's attempt.
async fn begin<S: CartStore>(store: &S, user_id: &str, key: &str) -> Result<Begun, Problem> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_RUNNING;
    loop {
        let now = Utc::now();
        let previous = store.checkout(user_id, key).await.map_err(store_failure)?;
        let next = match &previous {
            None => Checkout::start(user_id, key, 1, now, LEASE),
            Some(done) if done.status == CheckoutStatus::Done => return Ok(Begun::Answered(replay(done))),
            Some(failed) if failed.status == CheckoutStatus::Retryable => {
                Checkout::start(user_id, key, failed.attempt + 1, now, LEASE)
            }
            // Died half-way: resume it with the same ids.
            Some(stale) if stale.lease_until < now => Checkout { lease_until: now + LEASE, ..stale.clone() },
            Some(_running) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(Problem::conflict(
                        "a checkout with this Idempotency-Key is still running; try again shortly",
                    )
                    .header(header::RETRY_AFTER, "2"));
                }
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
    /// For good (an order, a decline, a shortage, an empty cart): recorded and replayed.
    Final(Result<(StatusCode, Value), Problem>),
    /// A service was down and everything was undone: this key may try again.
    Retryable(Problem),
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

/// What this attempt buys: its snapshot when resumed, else the cart priced now (and then
/// recorded as its snapshot). `Err` is the attempt's outcome already.
async fn lines_to_buy<S: CartStore, D: Downstream>(
    store: &S,
    downstream: &D,
    attempt: &mut Checkout,
    cid: &CorrelationId,
) -> Result<Vec<OrderLine>, Outcome> {
    if let Some(snapshot) = &attempt.snapshot {
        return Ok(snapshot.clone());
    }
    let (cart, _) = store.cart(&attempt.user_id).await.map_err(|e| Outcome::Retryable(store_failure(e)))?;
    if cart.items.is_empty() {
        return Err(Outcome::Final(Err(Problem::bad_request("the cart is empty"))));
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
        return Err(Outcome::Final(Err(shortage_problem().with("shortages", gone))));
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
    let total_cents: u64 = lines.iter().map(|l| l.unit_price_cents * u64::from(l.quantity)).sum();

    // 1. Authorize the payment.
    let payment = PaymentRequest {
        idempotency_key: attempt.payment_key(),
        order_id: attempt.order_id.clone(),
        user_id: attempt.user_id.clone(),
        amount_cents: total_cents,
        currency: CURRENCY,
        payment_token: token.to_owned(),
    };
    let payment_id = match downstream.authorize(&payment, cid).await {
        Ok(Authorization::Authorized { payment_id }) => payment_id,
        Ok(Authorization::Refused(problem)) => return Outcome::Final(Err(problem)),
        Err(error) => return Outcome::Retryable(error.into()),
    };

    // 2. Reserve the stock, all lines or none.
    let bought: Vec<CartLine> =
        lines.iter().map(|l| CartLine { product_id: l.product_id.clone(), quantity: l.quantity }).collect();
    let reservation_id = attempt.reservation_id();
    match downstream.reserve(&reservation_id, &bought, cid).await {
        Ok(Stock::Reserved) => {}
        Ok(Stock::Short(problem)) => {
            undo(downstream, Some(&payment_id), None, cid).await;
            return Outcome::Final(Err(problem));
        }
        Err(error) => {
            // The reservation may have happened before the answer was lost: release it too.
            undo(downstream, Some(&payment_id), Some(&reservation_id), cid).await;
            return Outcome::Retryable(error.into());
        }
    }

    // 3. Create the order (which publishes order.created). Creating is idempotent on the
    // order id: if an answer was lost, asking again returns the order that exists; only an
    // order that surely is not there is undone.
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
        Err(first) => match downstream.create_order(&request, cid).await {
            Ok(order) => order,
            Err(_) => {
                undo(downstream, Some(&payment_id), Some(&reservation_id), cid).await;
                return Outcome::Retryable(first.into());
            }
        },
    };

    // 4. Empty the cart of what was bought (what was added meanwhile stays).
    empty_cart(store, &attempt.user_id, &bought).await;
    tracing::info!(order_id = %attempt.order_id, total_cents, lines = bought.len(), "checkout complete");
    Outcome::Final(Ok((StatusCode::CREATED, order)))
}

fn shortage_problem() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "insufficient-stock",
        "Not enough stock",
        "some products do not have enough stock",
    )
}

/// Gives back what an attempt took. Both calls are retried by the client; if one still
/// fails it is logged loudly: an authorization then lapses unsettled (it is never settled
/// without an order) and a reservation stays held until released by hand.
async fn undo<D: Downstream>(
    downstream: &D,
    payment_id: Option<&str>,
    reservation_id: Option<&str>,
    cid: &CorrelationId,
) {
    if let Some(reservation_id) = reservation_id
        && let Err(error) = downstream.release(reservation_id, cid).await
    {
        tracing::error!(%error, reservation_id, "could not release a reservation while undoing a checkout");
    }
    if let Some(payment_id) = payment_id
        && let Err(error) = downstream.void(payment_id, cid).await
    {
        tracing::error!(%error, payment_id, "could not void an authorization while undoing a checkout");
    }
}

async fn empty_cart<S: CartStore>(store: &S, user_id: &str, bought: &[CartLine]) {
    for _ in 0..3 {
        match store.cart(user_id).await {
            Ok((cart, version)) => match store.save_cart(&cart.without(bought), version).await {
                Ok(true) => return,
                Ok(false) => continue,
                Err(error) => tracing::error!(%error, "could not empty the cart after checkout"),
            },
            Err(error) => tracing::error!(%error, "could not read the cart after checkout"),
        }
        return;
    }
}
