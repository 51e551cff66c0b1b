//! The Lambda edge of the Payment service: `POST /internal/payments/authorize` and
//! `POST /internal/payments/{payment_id}/void` (IAM), `GET /payments/{payment_id}` (owner).

use lambda_http::Request;
use lambda_http::http::StatusCode;
use shared::api::path_parameter;
use shared::caller::caller;
use shared::metrics::{self, Metric};
use shared::problem::json_body;
use shared::{CorrelationId, Problem, Reply};

use crate::domain::{AuthorizeRequest, CURRENCY, GatewayDown, Payment, PaymentGateway, PaymentStatus, Refusal};
use crate::store::{KeyOutcome, PaymentStore, StoreError, StoredPayment};

fn unavailable(error: StoreError) -> Problem {
    tracing::error!(%error, "payment store unavailable");
    Problem::unavailable("payments are unavailable; try again shortly")
}

fn gateway_down(error: GatewayDown) -> Problem {
    tracing::error!(%error, "payment gateway unavailable");
    Problem::unavailable("the payment gateway is unavailable; nothing was charged")
}

fn declined(reason: &str) -> Problem {
    Problem::new(
        StatusCode::PAYMENT_REQUIRED,
        "payment-declined",
        "Payment declined",
        format!("the payment was declined: {reason}"),
    )
}

async fn existing<S: PaymentStore>(store: &S, payment_id: &str) -> Result<Payment, Problem> {
    match store.get(payment_id).await.map_err(unavailable)? {
        Some(stored) => Ok(stored.payment),
        None => Err(Problem::not_found(format!("no payment {payment_id}"))),
    }
}

pub async fn authorize<S: PaymentStore, G: PaymentGateway>(
    store: &S,
    gateway: &G,
    request: Request,
    _: CorrelationId,
) -> Result<Reply, Problem> {
    let ask: AuthorizeRequest = json_body(&request)?;
    ask.validate().map_err(|e| Problem::bad_request(e.0))?;
    match store.claim_key(&ask.idempotency_key).await.map_err(unavailable)? {
        None => {}
        Some(KeyOutcome::Authorized { payment_id }) => {
            return Ok(Reply::json(StatusCode::CREATED, &existing(store, &payment_id).await?));
        }
        Some(KeyOutcome::Declined { reason }) => return Err(declined(&reason)),
        Some(KeyOutcome::Pending { .. }) => {
            return Err(Problem::conflict("an authorization with this key is in progress; try again shortly"));
        }
    }
    let answer = match gateway.authorize(&ask.payment_token, ask.amount_cents) {
        Ok(answer) => answer,
        Err(down) => {
            // Nothing was authorized: let a retry with the same key try again.
            store.drop_key(&ask.idempotency_key).await.map_err(unavailable)?;
            return Err(gateway_down(down));
        }
    };
    match answer {
        Ok(gateway_ref) => {
            let now = chrono::Utc::now();
            let payment = Payment {
                payment_id: format!("pay_{}", ulid::Ulid::generate()),
                order_id: ask.order_id,
                user_id: ask.user_id,
                amount_cents: ask.amount_cents,
                currency: CURRENCY.to_owned(),
                status: PaymentStatus::Authorized,
                created_at: now,
                updated_at: now,
            };
            let stored = StoredPayment { payment: payment.clone(), gateway_ref, token: ask.payment_token };
            let outcome = KeyOutcome::Authorized { payment_id: payment.payment_id.clone() };
            store.settle_key(&ask.idempotency_key, &outcome, Some(&stored)).await.map_err(unavailable)?;
            tracing::info!(payment_id = %payment.payment_id, amount_cents = payment.amount_cents, "payment authorized");
            Ok(Reply::json(StatusCode::CREATED, &payment))
        }
        Err(Refusal::InvalidToken) => {
            store.drop_key(&ask.idempotency_key).await.map_err(unavailable)?;
            Err(Problem::bad_request("payment_token is not a valid token"))
        }
        Err(Refusal::Declined(reason)) => {
            store
                .settle_key(&ask.idempotency_key, &KeyOutcome::Declined { reason: reason.clone() }, None)
                .await
                .map_err(unavailable)?;
            metrics::count(Metric::PaymentFailures, ("Service", "payment"), 1);
            Err(declined(&reason))
        }
    }
}

pub async fn void<S: PaymentStore, G: PaymentGateway>(
    store: &S,
    gateway: &G,
    request: Request,
    _: CorrelationId,
) -> Result<Reply, Problem> {
    let payment_id = path_parameter(&request, "payment_id")?;
    let stored = store
        .get(&payment_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| Problem::not_found(format!("no payment {payment_id}")))?;
    match stored.payment.status {
        PaymentStatus::Voided => {}
        PaymentStatus::Authorized => {
            gateway.void(&stored.gateway_ref).map_err(gateway_down)?;
            if !store
                .transition(&payment_id, PaymentStatus::Authorized, PaymentStatus::Voided)
                .await
                .map_err(unavailable)?
            {
                return Err(Problem::conflict("the payment changed meanwhile; read it again"));
            }
            tracing::info!(%payment_id, "payment voided");
        }
        other => return Err(Problem::conflict(format!("a {other:?} payment cannot be voided").to_lowercase())),
    }
    Ok(Reply::ok(&existing(store, &payment_id).await?))
}

pub async fn get<S: PaymentStore>(store: &S, request: Request, _: CorrelationId) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let payment_id = path_parameter(&request, "payment_id")?;
    match store.get(&payment_id).await.map_err(unavailable)? {
        Some(stored) if stored.payment.user_id == who.user_id => Ok(Reply::ok(&stored.payment)),
        // Another user's payment is not found, not forbidden.
        _ => Err(Problem::not_found(format!("no payment {payment_id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SandboxGateway;
    use crate::store::MemoryStore;
    use shared::events::Role;
    use shared::testing::{as_caller, body, call, sample, with_body, with_path};

    fn ask(key: &str, token: &str) -> Request {
        let body_text = serde_json::json!({"idempotency_key": key, "order_id": "ord_1", "user_id": "usr_1", "amount_cents": 2500, "payment_token": token}).to_string();
        with_body(sample("http-post-internal-authorize.json"), &body_text)
    }

    #[tokio::test]
    async fn the_same_key_authorizes_once() {
        let store = MemoryStore::default();
        let handler = |r, c| authorize(&store, &SandboxGateway, r, c);
        let first = call(&handler, sample("http-post-internal-authorize.json")).await;
        assert_eq!(first.status(), 201);
        let again = call(&handler, sample("http-post-internal-authorize.json")).await;
        assert_eq!(body(&again), body(&first), "the same payment, not a second one");
        assert_eq!(body(&first)["status"], "authorized");
    }

    #[tokio::test]
    async fn declines_are_402_every_time_and_bad_tokens_400() {
        let store = MemoryStore::default();
        let handler = |r, c| authorize(&store, &SandboxGateway, r, c);
        for _ in 0..2 {
            let declined = call(&handler, ask("k-decline", "tok_chargeDeclined")).await;
            assert_eq!(declined.status(), 402);
            assert!(body(&declined)["type"].as_str().unwrap().ends_with("/payment-declined"));
        }
        assert_eq!(call(&handler, ask("k-bad", "tok_nope")).await.status(), 400);
    }

    #[tokio::test]
    async fn voids_are_idempotent_and_owners_read_their_payments() {
        let store = MemoryStore::default();
        let payment = body(&call(&|r, c| authorize(&store, &SandboxGateway, r, c), ask("k1", "tok_visa")).await);
        let id = payment["payment_id"].as_str().unwrap();
        for _ in 0..2 {
            let voided = call(
                &|r, c| void(&store, &SandboxGateway, r, c),
                with_path(sample("http-post-internal-void.json"), "payment_id", id),
            )
            .await;
            assert_eq!(body(&voided)["status"], "voided");
        }
        let read =
            |user: &str| as_caller(with_path(sample("http-get-payment.json"), "payment_id", id), user, Role::Customer);
        assert_eq!(call(&|r, c| get(&store, r, c), read("usr_1")).await.status(), 200);
        assert_eq!(call(&|r, c| get(&store, r, c), read("usr_2")).await.status(), 404, "no existence leak");
    }
}
