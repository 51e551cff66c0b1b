//! The order-updates-queue consumer: `payment.completed` moves a placed order to `paid` and
//! publishes `order.completed`; `payment.failed` moves it to `payment_failed` and publishes
//! `order.cancelled` (so stock is released). Each move is conditional on the order still
//! being `placed` and written with its event: a redelivery changes nothing. A payment event
//! for an order not visible yet is retried by the queue. `inventory.updated` needs nothing.

use shared::events::Event;
use shared::publisher::Publish;
use shared::{CorrelationId, Envelope, Retry};

use crate::domain::OrderStatus;
use crate::store::{OrderStore, record};

pub async fn handle<S: OrderStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    envelope: Envelope,
) -> Result<(), Retry> {
    let correlation_id = CorrelationId::from_header(Some(&envelope.correlationid));
    let (order_id, to) = match &envelope.event {
        Event::PaymentCompleted(paid) => (paid.order_id.clone(), OrderStatus::Paid),
        Event::PaymentFailed(failed) => (failed.order_id.clone(), OrderStatus::PaymentFailed),
        _ => return Ok(()),
    };
    let current = store
        .get(&order_id)
        .await
        .map_err(Retry::because)?
        .ok_or_else(|| Retry::because(format!("order {order_id} is not visible yet")))?;
    let Some(moved) = current.order.after_payment(to, chrono::Utc::now()) else {
        // Paid, failed or cancelled already: this delivery is a repeat, or too late.
        return Ok(());
    };
    let event = match to {
        OrderStatus::Paid => moved.completed(&correlation_id),
        _ => moved.cancelled("payment_failed", &current.reservation_id, &correlation_id),
    };
    // Moved meanwhile (e.g. cancelled): a retry sees the new state.
    if record(store, publisher, &current, moved, event).await.map_err(Retry::because)?.is_none() {
        return Err(Retry::because(format!("order {order_id} changed meanwhile")));
    }
    tracing::info!(%order_id, status = ?to, "order updated by its payment");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use shared::publisher::MemoryPublisher;
    use testkit::requests::{call, sample};

    async fn placed() -> (MemoryStore, MemoryPublisher) {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        call(&|r| crate::handlers::internal::create(&store, &publisher, r), sample("http-post-internal-order.json"))
            .await;
        (store, publisher)
    }

    async fn status(store: &MemoryStore) -> OrderStatus {
        store.get("ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E").await.unwrap().unwrap().order.status
    }

    #[tokio::test]
    async fn payment_completed_pays_the_order_once() {
        let (store, publisher) = placed().await;
        for _ in 0..2 {
            handle(&store, &publisher, testkit::requests::sqs_envelope("sqs-payment-completed.json")).await.unwrap();
        }
        assert_eq!(status(&store).await, OrderStatus::Paid);
        let types: Vec<_> = publisher.published().iter().map(|e| e.event_type()).collect();
        assert_eq!(types, ["order.created", "order.completed"]);
    }

    #[tokio::test]
    async fn payment_failed_cancels_the_order_and_a_late_success_changes_nothing() {
        let (store, publisher) = placed().await;
        handle(&store, &publisher, testkit::requests::sqs_envelope("sqs-payment-failed.json")).await.unwrap();
        handle(&store, &publisher, testkit::requests::sqs_envelope("sqs-payment-completed.json")).await.unwrap();
        assert_eq!(status(&store).await, OrderStatus::PaymentFailed);
        assert_eq!(publisher.published().last().unwrap().event_type(), "order.cancelled");
    }

    #[tokio::test]
    async fn a_payment_before_its_order_is_retried() {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        assert!(
            handle(&store, &publisher, testkit::requests::sqs_envelope("sqs-payment-completed.json")).await.is_err()
        );
        assert!(
            handle(&store, &publisher, testkit::requests::sqs_envelope("sqs-inventory-updated.json")).await.is_ok()
        );
    }
}
