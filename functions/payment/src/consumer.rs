//! The payment-settlement-queue consumer: settles a payment when its order is created
//! (-> `payment.completed` or `payment.failed`), voids or refunds it when the order is
//! cancelled (-> `payment.refunded`). Each is a claimed move (`moves`), so a redelivered or
//! duplicated message finds the move claimed or done and never moves the money twice.

use shared::events::{Event, OrderCancelled, OrderCreated, PaymentFailed};
use shared::metrics::{self, Metric};
use shared::outbox::deliver;
use shared::publisher::Publish;
use shared::{CorrelationId, Envelope, Retry};

use crate::clients::PaymentGateway;
use crate::domain::PaymentStatus;
use crate::moves::{self, Move, MoveError, Outcome};
use crate::store::PaymentStore;

pub async fn handle<S: PaymentStore, G: PaymentGateway, P: Publish + Sync>(
    store: &S,
    gateway: &G,
    publisher: &P,
    envelope: Envelope,
) -> Result<(), Retry> {
    let correlation_id = CorrelationId::from_header(Some(&envelope.correlationid));
    match envelope.event {
        Event::OrderCreated(order) => settle(store, gateway, publisher, &order, &correlation_id).await,
        Event::OrderCancelled(order) => cancel(store, gateway, publisher, &order, &correlation_id).await,
        // Not routed here; acknowledged, not retried.
        _ => Ok(()),
    }
}

async fn settle<S: PaymentStore, G: PaymentGateway, P: Publish + Sync>(
    store: &S,
    gateway: &G,
    publisher: &P,
    order: &OrderCreated,
    correlation_id: &CorrelationId,
) -> Result<(), Retry> {
    match moves::run(store, gateway, &order.payment_id, Move::Capture, Some(correlation_id)).await {
        Ok(Some((outcome, Some(envelope)))) => {
            tracing::info!(payment_id = %order.payment_id, status = ?outcome.status(), "payment settled");
            if matches!(outcome, Outcome::Failed(_)) {
                metrics::count(Metric::PaymentFailures, ("Service", "payment"), 1);
            }
            deliver(store.outbox(), publisher, &[envelope]).await;
            Ok(())
        }
        // Recorded by another copy of this event: its event went out with that change.
        Ok(_) => Ok(()),
        // The checkout voided it (its answer was lost): the order must not stay placed. The
        // event id is the payment's, so redeliveries make the same event, deduplicated downstream.
        Err(MoveError::Elsewhere(PaymentStatus::Voided)) => {
            let stored = store.get(&order.payment_id).await.map_err(Retry::because)?;
            let user_id = stored.map(|s| s.payment.user_id).unwrap_or_else(|| order.user_id.clone());
            let event = PaymentFailed {
                payment_id: order.payment_id.clone(),
                order_id: order.order_id.clone(),
                user_id,
                reason: "voided".into(),
            };
            let mut envelope = Envelope::new(Event::PaymentFailed(event), correlation_id);
            envelope.id = format!("{}-voided", order.payment_id);
            publisher.publish(&envelope).await.map_err(Retry::because)
        }
        // Settled, failed or refunded before: its event went out with that change.
        Err(MoveError::Elsewhere(status)) if status != PaymentStatus::Voiding => Ok(()),
        // Not visible yet, being voided, or a dependency is down: the queue tries again.
        Err(error) => Err(Retry::because(error)),
    }
}

async fn cancel<S: PaymentStore, G: PaymentGateway, P: Publish + Sync>(
    store: &S,
    gateway: &G,
    publisher: &P,
    order: &OrderCancelled,
    correlation_id: &CorrelationId,
) -> Result<(), Retry> {
    // Settlement may move the payment meanwhile (both events share a queue): look again.
    for _ in 0..3 {
        let stored = store
            .get(&order.payment_id)
            .await
            .map_err(Retry::because)?
            .ok_or_else(|| Retry::because(format!("payment {} is not visible yet", order.payment_id)))?;
        let kind = match stored.payment.status {
            PaymentStatus::Authorized | PaymentStatus::Voiding => Move::Void,
            PaymentStatus::Settled | PaymentStatus::Refunding => Move::Refund,
            PaymentStatus::Settling => {
                return Err(Retry::because("the payment is being settled; refunding it afterwards"));
            }
            // Failed, voided or refunded: no money to give back.
            PaymentStatus::Failed | PaymentStatus::Voided | PaymentStatus::Refunded => return Ok(()),
        };
        match moves::run(store, gateway, &order.payment_id, kind, Some(correlation_id)).await {
            Ok(Some((outcome, Some(envelope)))) => {
                tracing::info!(payment_id = %order.payment_id, status = ?outcome.status(), "payment given back");
                deliver(store.outbox(), publisher, &[envelope]).await;
                return Ok(());
            }
            Ok(_) => return Ok(()),
            Err(MoveError::Elsewhere(_)) => continue,
            Err(error) => return Err(Retry::because(error)),
        }
    }
    Err(Retry::because("the payment keeps changing; retrying the cancel"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use crate::clients::{Authorization, Fake, GatewayDown, GatewayRef, Refusal};
    use crate::store::memory::MemoryStore;
    use shared::publisher::MemoryPublisher;

    async fn store_with(token: &str) -> MemoryStore {
        store_at(token, PaymentStatus::Authorized, chrono::Utc::now()).await
    }

    /// A store with the sample's payment in `status`, last changed at `changed`.
    async fn store_at(token: &str, status: PaymentStatus, changed: chrono::DateTime<chrono::Utc>) -> MemoryStore {
        crate::store::memory::holding_sample(status, changed, "pi_test", token).await
    }

    /// The fake gateway, counting the calls that move money and taking a moment over each, so
    /// that concurrent handlers interleave at the gateway.
    #[derive(Default)]
    struct Counting {
        captures: AtomicU32,
        voids: AtomicU32,
        refunds: AtomicU32,
    }

    impl PaymentGateway for Counting {
        async fn authorize(
            &self,
            key: &str,
            ask: &Authorization<'_>,
        ) -> Result<Result<GatewayRef, Refusal>, GatewayDown> {
            Fake.authorize(key, ask).await
        }
        async fn void(&self, _: &str, _: &GatewayRef) -> Result<(), GatewayDown> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.voids.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn settle(&self, _: &str, _: &GatewayRef, _: &str) -> Result<Result<(), String>, GatewayDown> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.captures.fetch_add(1, Ordering::SeqCst);
            Ok(Ok(()))
        }
        async fn refund(&self, _: &str, _: &GatewayRef, _: u64) -> Result<(), GatewayDown> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.refunds.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Defect (issue 14.2): two copies of order.created (the request's publish and the
    /// relay's) both found the payment authorized and both captured it.
    #[tokio::test]
    async fn two_copies_of_order_created_at_once_capture_once() {
        let (store, publisher, gateway) =
            (store_with("tok_visa").await, MemoryPublisher::default(), Counting::default());
        let created = || testkit::requests::sqs_envelope("sqs-order-created.json");
        let (a, b) = tokio::join!(
            handle(&store, &gateway, &publisher, created()),
            handle(&store, &gateway, &publisher, created())
        );
        // The copy that found the capture claimed is retried by the queue, and then finds it done.
        if a.is_err() || b.is_err() {
            handle(&store, &gateway, &publisher, created()).await.unwrap();
        }
        assert_eq!(gateway.captures.load(Ordering::SeqCst), 1, "captured once");
        assert_eq!(status(&store).await, PaymentStatus::Settled);
        let types: Vec<_> = publisher.published().iter().map(|e| e.event_type()).collect();
        assert_eq!(types, ["payment.completed"]);
    }

    /// A capture claimed by a settler that died (or lost the answer) is finished by the next
    /// delivery once the claim is stale, under the same key; a fresh claim is left to its holder.
    #[tokio::test]
    async fn a_claimed_capture_is_resumed_once_its_claim_is_stale() {
        let publisher = MemoryPublisher::default();
        let fresh = store_at("tok_visa", PaymentStatus::Settling, chrono::Utc::now()).await;
        let created = || testkit::requests::sqs_envelope("sqs-order-created.json");
        assert!(handle(&fresh, &Fake, &publisher, created()).await.is_err(), "retried later");
        assert_eq!(status(&fresh).await, PaymentStatus::Settling);

        let stale =
            store_at("tok_visa", PaymentStatus::Settling, chrono::Utc::now() - chrono::Duration::minutes(1)).await;
        handle(&stale, &Fake, &publisher, created()).await.unwrap();
        assert_eq!(status(&stale).await, PaymentStatus::Settled);
        assert_eq!(publisher.published()[0].event_type(), "payment.completed");
    }

    /// Defect (issue 14.2): a cancel racing settlement voided at the gateway while the
    /// capture went through (or captured what the store calls voided).
    #[tokio::test]
    async fn a_cancel_racing_settlement_never_both_captures_and_voids() {
        let (store, publisher, gateway) =
            (store_with("tok_visa").await, MemoryPublisher::default(), Counting::default());
        let created = || testkit::requests::sqs_envelope("sqs-order-created.json");
        let cancelled = || testkit::requests::sqs_envelope("sqs-order-cancelled.json");
        let (a, b) = tokio::join!(
            handle(&store, &gateway, &publisher, created()),
            handle(&store, &gateway, &publisher, cancelled())
        );
        // What the queue redelivers after a retryable failure.
        if a.is_err() {
            handle(&store, &gateway, &publisher, created()).await.unwrap();
        }
        if b.is_err() {
            handle(&store, &gateway, &publisher, cancelled()).await.unwrap();
        }
        let (captures, voids, refunds) = (
            gateway.captures.load(Ordering::SeqCst),
            gateway.voids.load(Ordering::SeqCst),
            gateway.refunds.load(Ordering::SeqCst),
        );
        assert_eq!(captures + voids, 1, "one of the two moves: {captures} captures, {voids} voids");
        let end = status(&store).await;
        match end {
            PaymentStatus::Voided => assert_eq!(refunds, 0),
            PaymentStatus::Refunded => assert_eq!((captures, refunds), (1, 1), "captured, then given back"),
            other => panic!("the payment ended {other:?}"),
        }
    }

    /// A void whose answer the provider lost.
    struct VoidLost;

    impl PaymentGateway for VoidLost {
        async fn authorize(
            &self,
            key: &str,
            ask: &Authorization<'_>,
        ) -> Result<Result<GatewayRef, Refusal>, GatewayDown> {
            Fake.authorize(key, ask).await
        }
        async fn void(&self, _: &str, _: &GatewayRef) -> Result<(), GatewayDown> {
            Err(GatewayDown("timed out".into()))
        }
        async fn settle(
            &self,
            key: &str,
            reference: &GatewayRef,
            token: &str,
        ) -> Result<Result<(), String>, GatewayDown> {
            Fake.settle(key, reference, token).await
        }
        async fn refund(&self, key: &str, reference: &GatewayRef, amount: u64) -> Result<(), GatewayDown> {
            Fake.refund(key, reference, amount).await
        }
    }

    /// Defect (issue 16's note): an order's cancel claimed the void of its payment and lost the
    /// provider's answer; the checkout's void route, resuming that stale claim, recorded the
    /// payment voided with no event, and the cancel's redelivery then found it voided: the
    /// customer was never told the money was given back (no payment.refunded).
    #[tokio::test(start_paused = true)]
    async fn a_cancels_void_finished_by_someone_else_is_still_reported() {
        let (store, publisher) = (store_with("tok_visa").await, MemoryPublisher::default());
        let cancelled = || testkit::requests::sqs_envelope("sqs-order-cancelled.json");
        assert!(handle(&store, &VoidLost, &publisher, cancelled()).await.is_err(), "maybe voided: retried");
        assert_eq!(status(&store).await, PaymentStatus::Voiding);

        tokio::time::advance(Duration::from_secs(13)).await;
        let id = "pay_01JD4S5Q2R3S4T5V6W7X8Y9Z0A";
        let void_route =
            testkit::requests::with_path(testkit::requests::sample("http-post-internal-void.json"), "payment_id", id);
        let voided = testkit::requests::call(&|r| crate::handlers::internal::void(&store, &Fake, r), void_route).await;
        assert_eq!(voided.status(), 200);
        assert_eq!(status(&store).await, PaymentStatus::Voided);
        handle(&store, &Fake, &publisher, cancelled()).await.unwrap();

        shared::outbox::relay(&store.outbox, &publisher).await.unwrap();
        let types: Vec<_> = publisher.published().iter().map(|e| e.event_type()).collect();
        assert_eq!(types, ["payment.refunded"], "reported once, by whoever recorded the void");
        assert_eq!(
            publisher.published()[0].correlationid,
            cancelled().correlationid,
            "under the cancel's correlation id"
        );
    }

    async fn status(store: &MemoryStore) -> PaymentStatus {
        store.get("pay_01JD4S5Q2R3S4T5V6W7X8Y9Z0A").await.unwrap().unwrap().payment.status
    }

    #[tokio::test]
    async fn order_created_settles_once_however_often_it_is_delivered() {
        let (store, publisher) = (store_with("tok_visa").await, MemoryPublisher::default());
        for _ in 0..2 {
            handle(&store, &Fake, &publisher, testkit::requests::sqs_envelope("sqs-order-created.json")).await.unwrap();
        }
        assert_eq!(status(&store).await, PaymentStatus::Settled);
        let types: Vec<_> = publisher.published().iter().map(|e| e.event_type()).collect();
        assert_eq!(types, ["payment.completed"]);
    }

    #[tokio::test]
    async fn a_settlement_that_fails_is_payment_failed() {
        let (store, publisher) = (store_with("tok_settlementFails").await, MemoryPublisher::default());
        handle(&store, &Fake, &publisher, testkit::requests::sqs_envelope("sqs-order-created.json")).await.unwrap();
        assert_eq!(status(&store).await, PaymentStatus::Failed);
        assert_eq!(publisher.published()[0].event_type(), "payment.failed");
    }

    #[tokio::test]
    async fn a_cancel_voids_or_refunds_once() {
        let (store, publisher) = (store_with("tok_visa").await, MemoryPublisher::default());
        handle(&store, &Fake, &publisher, testkit::requests::sqs_envelope("sqs-order-created.json")).await.unwrap();
        for _ in 0..2 {
            handle(&store, &Fake, &publisher, testkit::requests::sqs_envelope("sqs-order-cancelled.json"))
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
            handle(&store, &Fake, &publisher, testkit::requests::sqs_envelope("sqs-order-created.json")).await.is_err()
        );
    }
}
