//! The payment-settlement-queue consumer: settles a payment when its order is created
//! (-> `payment.completed` or `payment.failed`), voids or refunds it when the order is
//! cancelled (-> `payment.refunded`). Every move is a conditional status change written with
//! its event, so a redelivered message finds the payment moved and does nothing again.

use shared::events::{Event, OrderCancelled, OrderCreated, PaymentCompleted, PaymentFailed, PaymentRefunded};
use shared::metrics::{self, Metric};
use shared::outbox::deliver;
use shared::publisher::Publish;
use shared::{CorrelationId, Envelope};

use crate::domain::{PaymentGateway, PaymentStatus};
use crate::store::{PaymentStore, StoredPayment};

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// Retried by the queue: e.g. the payment is not visible yet, or a dependency is down.
    #[error("{0}")]
    Retry(String),
}

fn retry(error: impl std::fmt::Display) -> ConsumerError {
    ConsumerError::Retry(error.to_string())
}

pub async fn handle<S: PaymentStore, G: PaymentGateway, P: Publish + Sync>(
    store: &S,
    gateway: &G,
    publisher: &P,
    envelope: Envelope,
) -> Result<(), ConsumerError> {
    let cid = CorrelationId::from_header(Some(&envelope.correlationid));
    match envelope.event {
        Event::OrderCreated(order) => settle(store, gateway, publisher, &order, &cid).await,
        Event::OrderCancelled(order) => cancel(store, gateway, publisher, &order, &cid).await,
        // Not routed here; acknowledged, not retried.
        _ => Ok(()),
    }
}

async fn payment<S: PaymentStore>(store: &S, payment_id: &str) -> Result<StoredPayment, ConsumerError> {
    store.get(payment_id).await.map_err(retry)?.ok_or_else(|| retry(format!("payment {payment_id} is not visible yet")))
}

async fn settle<S: PaymentStore, G: PaymentGateway, P: Publish + Sync>(
    store: &S,
    gateway: &G,
    publisher: &P,
    order: &OrderCreated,
    cid: &CorrelationId,
) -> Result<(), ConsumerError> {
    let stored = payment(store, &order.payment_id).await?;
    let p = &stored.payment;
    let (to, event) = match p.status {
        PaymentStatus::Authorized => match gateway.settle(&stored.gateway_ref, &stored.token).map_err(retry)? {
            Ok(()) => {
                let event = PaymentCompleted {
                    payment_id: p.payment_id.clone(),
                    order_id: order.order_id.clone(),
                    user_id: p.user_id.clone(),
                    amount_cents: p.amount_cents,
                };
                (PaymentStatus::Settled, Event::PaymentCompleted(event))
            }
            Err(reason) => {
                let event = PaymentFailed {
                    payment_id: p.payment_id.clone(),
                    order_id: order.order_id.clone(),
                    user_id: p.user_id.clone(),
                    reason,
                };
                (PaymentStatus::Failed, Event::PaymentFailed(event))
            }
        },
        // The checkout voided it (its answer was lost): the order must not stay placed. The
        // event id is the payment's, so redeliveries make the same event, deduplicated downstream.
        PaymentStatus::Voided => {
            let event = PaymentFailed {
                payment_id: p.payment_id.clone(),
                order_id: order.order_id.clone(),
                user_id: p.user_id.clone(),
                reason: "voided".into(),
            };
            let mut envelope = Envelope::new(Event::PaymentFailed(event), cid);
            envelope.id = format!("{}-voided", p.payment_id);
            return publisher.publish(&envelope).await.map_err(retry);
        }
        // Settled, failed or refunded before: its event went out with that change.
        _ => return Ok(()),
    };
    let envelope = Envelope::new(event, cid);
    if store.transition_with(&p.payment_id, PaymentStatus::Authorized, to, &envelope).await.map_err(retry)? {
        tracing::info!(payment_id = %p.payment_id, status = ?to, "payment settled");
        if to == PaymentStatus::Failed {
            metrics::count(Metric::PaymentFailures, ("Service", "payment"), 1);
        }
        deliver(store.outbox(), publisher, &[envelope]).await;
    }
    Ok(())
}

async fn cancel<S: PaymentStore, G: PaymentGateway, P: Publish + Sync>(
    store: &S,
    gateway: &G,
    publisher: &P,
    order: &OrderCancelled,
    cid: &CorrelationId,
) -> Result<(), ConsumerError> {
    // Settlement may move the payment meanwhile (both events share a queue): look again.
    for _ in 0..3 {
        let stored = payment(store, &order.payment_id).await?;
        let p = &stored.payment;
        let from = p.status;
        let to = match from {
            PaymentStatus::Authorized => {
                gateway.void(&stored.gateway_ref).map_err(retry)?;
                PaymentStatus::Voided
            }
            PaymentStatus::Settled => {
                gateway.refund(&stored.gateway_ref, p.amount_cents).map_err(retry)?;
                PaymentStatus::Refunded
            }
            // Failed, voided or refunded: no money to give back.
            _ => return Ok(()),
        };
        let event = PaymentRefunded {
            payment_id: p.payment_id.clone(),
            order_id: order.order_id.clone(),
            user_id: p.user_id.clone(),
            amount_cents: p.amount_cents,
        };
        let envelope = Envelope::new(Event::PaymentRefunded(event), cid);
        if store.transition_with(&p.payment_id, from, to, &envelope).await.map_err(retry)? {
            tracing::info!(payment_id = %p.payment_id, status = ?to, "payment given back");
            deliver(store.outbox(), publisher, &[envelope]).await;
            return Ok(());
        }
    }
    Err(retry("the payment keeps changing; retrying the cancel"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GatewayRef, Payment, SandboxGateway};
    use crate::store::MemoryStore;
    use shared::publisher::MemoryPublisher;

    async fn store_with(token: &str) -> MemoryStore {
        let store = MemoryStore::default();
        let now = chrono::Utc::now();
        let payment = Payment {
            payment_id: "pay_01JD4S5Q2R3S4T5V6W7X8Y9Z0A".into(),
            order_id: "ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E".into(),
            user_id: "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A".into(),
            amount_cents: 7098,
            currency: "USD".into(),
            status: PaymentStatus::Authorized,
            created_at: now,
            updated_at: now,
        };
        let stored = StoredPayment { payment, gateway_ref: GatewayRef("sandbox:x".into()), token: token.into() };
        store
            .settle_key(
                "k",
                &crate::store::KeyOutcome::Authorized { payment_id: stored.payment.payment_id.clone() },
                Some(&stored),
            )
            .await
            .unwrap();
        store
    }

    async fn status(store: &MemoryStore) -> PaymentStatus {
        store.get("pay_01JD4S5Q2R3S4T5V6W7X8Y9Z0A").await.unwrap().unwrap().payment.status
    }

    #[tokio::test]
    async fn order_created_settles_once_however_often_it_is_delivered() {
        let (store, publisher) = (store_with("tok_visa").await, MemoryPublisher::default());
        for _ in 0..2 {
            handle(&store, &SandboxGateway, &publisher, shared::testing::sqs_envelope("sqs-order-created.json"))
                .await
                .unwrap();
        }
        assert_eq!(status(&store).await, PaymentStatus::Settled);
        let types: Vec<_> = publisher.published().iter().map(|e| e.event_type()).collect();
        assert_eq!(types, ["payment.completed"]);
    }

    #[tokio::test]
    async fn a_settlement_that_fails_is_payment_failed() {
        let (store, publisher) = (store_with("tok_settlementFails").await, MemoryPublisher::default());
        handle(&store, &SandboxGateway, &publisher, shared::testing::sqs_envelope("sqs-order-created.json"))
            .await
            .unwrap();
        assert_eq!(status(&store).await, PaymentStatus::Failed);
        assert_eq!(publisher.published()[0].event_type(), "payment.failed");
    }

    #[tokio::test]
    async fn a_cancel_voids_or_refunds_once() {
        let (store, publisher) = (store_with("tok_visa").await, MemoryPublisher::default());
        handle(&store, &SandboxGateway, &publisher, shared::testing::sqs_envelope("sqs-order-created.json"))
            .await
            .unwrap();
        for _ in 0..2 {
            handle(&store, &SandboxGateway, &publisher, shared::testing::sqs_envelope("sqs-order-cancelled.json"))
                .await
                .unwrap();
        }
        assert_eq!(status(&store).await, PaymentStatus::Refunded);
        let types: Vec<_> = publisher.published().iter().map(|e| e.event_type()).collect();
        assert_eq!(types, ["payment.completed", "payment.refunded"]);
    }

    #[tokio::test]
    async fn an_unknown_payment_is_retried_not_dropped() {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        assert!(
            handle(&store, &SandboxGateway, &publisher, shared::testing::sqs_envelope("sqs-order-created.json"))
                .await
                .is_err()
        );
    }
}
