//! The ai-events-queue consumer: keeps profiles, orders, co-purchases, popularity and seller
//! sales from `user.*`, `order.*` and `payment.*`. Each event is claimed first (shared
//! idempotency), so a redelivery counts nothing twice; an event about an order not seen yet
//! is retried by the queue. Whatever order events arrive in, the result is the same: statuses
//! only move up one ranking, and the latest order is the newest id, not the last one seen.

use std::time::Duration;

use shared::events::Event;
use shared::idempotency::{IdempotencyStore, OnceError, key, once};
use shared::{CorrelationId, Envelope, Retry};

use crate::clients::Services;
use crate::domain::{OrderSeen, Profile};
use crate::store::{AiStore, update_profile};

pub async fn handle<S: AiStore, I: IdempotencyStore, X: Services>(
    store: &S,
    claims: &I,
    services: &X,
    envelope: Envelope,
) -> Result<(), Retry> {
    let correlation_id = CorrelationId::from_header(Some(&envelope.correlationid));
    let work = || learn(store, services, &envelope.event, &correlation_id);
    match once(claims, &key("learn", &envelope.id), Duration::from_secs(60), work).await {
        Ok(_) => Ok(()),
        Err(OnceError::Work(retry)) => Err(retry),
        Err(OnceError::Idempotency(error)) => Err(Retry::because(error)),
    }
}

async fn learn<S: AiStore, X: Services>(
    store: &S,
    services: &X,
    event: &Event,
    correlation_id: &CorrelationId,
) -> Result<(), Retry> {
    match event {
        Event::UserRegistered(user) => {
            let named = |profile: &mut Profile| {
                profile.name = user.name.clone();
                true
            };
            update_profile(store, &user.user_id, named).await.map_err(Retry::because)
        }
        Event::OrderCreated(order) => {
            let ids: Vec<String> = order.items.iter().map(|i| i.product_id.clone()).collect();
            let known = store.products(&ids).await.map_err(Retry::because)?;
            let missing: Vec<String> = ids.into_iter().filter(|id| !known.contains_key(id)).collect();
            if !missing.is_empty() {
                for product in services.lookup(&missing, correlation_id).await.map_err(Retry::because)? {
                    store.save_product(&product).await.map_err(Retry::because)?;
                }
            }
            let seen = OrderSeen {
                order_id: order.order_id.clone(),
                user_id: order.user_id.clone(),
                items: order.items.clone(),
                total_cents: order.total_cents,
                status: "placed".into(),
                completed: false,
            };
            store.save_order(&seen).await.map_err(Retry::because)?;
            let latest = |profile: &mut Profile| {
                // Order ids are ULIDs: the newest sorts last.
                let newer = profile.latest_order.as_ref().is_none_or(|latest| *latest < order.order_id);
                if newer {
                    profile.latest_order = Some(order.order_id.clone());
                }
                newer
            };
            update_profile(store, &order.user_id, latest).await.map_err(Retry::because)
        }
        Event::OrderCompleted(done) => {
            let mut order = store
                .order(&done.order_id)
                .await
                .map_err(Retry::because)?
                .ok_or_else(|| Retry::because(format!("order {} not seen yet", done.order_id)))?;
            if order.completed {
                return Ok(());
            }
            let ids: Vec<String> = order.items.iter().map(|i| i.product_id.clone()).collect();
            let products = store.products(&ids).await.map_err(Retry::because)?;
            let bought = |profile: &mut Profile| {
                for item in &order.items {
                    if !profile.bought.contains(&item.product_id) {
                        profile.bought.push(item.product_id.clone());
                    }
                    if let Some(product) = products.get(&item.product_id) {
                        *profile.categories.entry(product.category.clone()).or_default() += u64::from(item.quantity);
                    }
                }
                true
            };
            update_profile(store, &order.user_id, bought).await.map_err(Retry::because)?;
            order.completed = true;
            if rank(&order.status) < rank("paid") {
                order.status = "paid".into();
            }
            store.save_order(&order).await.map_err(Retry::because)?;
            // Last: the counters are not idempotent, and the order, now `completed`, is not
            // counted again if this fails half-way (an undercount rather than a double one).
            store.add_sale(&order).await.map_err(Retry::because)
        }
        Event::OrderCancelled(order) => set_status(store, &order.order_id, "cancelled").await,
        Event::PaymentFailed(payment) => set_status(store, &payment.order_id, "payment_failed").await,
        Event::PaymentRefunded(payment) => set_status(store, &payment.order_id, "refunded").await,
        // A purchase counts once it is paid (`order.completed`), not at delivery: a paid order
        // is bought (only a cancel gives it back, and shipping rules that out), and sellers
        // need not record deliveries for their sales to count. The events are per shipment,
        // not per order, so they say nothing of the order's status either.
        Event::OrderShipped(_) | Event::OrderDelivered(_) => Ok(()),
        // Nothing to learn (ai-events-queue does not even subscribe to seller-events).
        Event::PaymentCompleted(_)
        | Event::InventoryUpdated(_)
        | Event::SellerApproved(_)
        | Event::SellerSuspended(_) => Ok(()),
    }
}

/// How far along an order is. One total ranking, and statuses only move up it, so the last
/// status is the same whatever order events come in: a failed settlement cancels the order
/// (so `payment_failed` outranks `cancelled`), a refund follows a cancel after payment.
fn rank(status: &str) -> u8 {
    match status {
        "placed" => 0,
        "paid" => 1,
        "cancelled" => 2,
        "payment_failed" => 3,
        "refunded" => 4,
        _ => 0,
    }
}

/// News about an order's status. About an order not seen yet it fails, so the queue brings
/// it back after `order.created` (kept now, it would be overwritten by `placed`).
async fn set_status<S: AiStore>(store: &S, order_id: &str, status: &str) -> Result<(), Retry> {
    let mut order = store
        .order(order_id)
        .await
        .map_err(Retry::because)?
        .ok_or_else(|| Retry::because(format!("order {order_id} not seen yet")))?;
    if rank(status) > rank(&order.status) {
        order.status = status.to_owned();
        store.save_order(&order).await.map_err(Retry::because)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use shared::idempotency::MemoryIdempotency;

    use super::*;
    use crate::clients::fakes::Catalogue;
    use crate::handlers::test_support::{CUSTOMER, SELLER, learned};
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn replaying_every_sample_twice_learns_the_same_as_once() {
        let (once, twice) = (learned(1).await, learned(2).await);
        assert_eq!(once.profile(CUSTOMER).await.unwrap(), twice.profile(CUSTOMER).await.unwrap());
        assert_eq!(once.popular(10).await.unwrap(), twice.popular(10).await.unwrap());
        assert_eq!(once.seller(SELLER).await.unwrap(), twice.seller(SELLER).await.unwrap());
        let summary = twice.seller(SELLER).await.unwrap();
        assert_eq!((summary.orders, summary.units_sold, summary.revenue_cents), (1, 3, 7098));
    }

    #[tokio::test]
    async fn an_order_completed_before_it_was_seen_is_retried() {
        let (store, claims) = (MemoryStore::default(), MemoryIdempotency::default());
        assert!(
            handle(&store, &claims, &Catalogue, testkit::requests::sqs_envelope("sqs-order-completed.json"))
                .await
                .is_err()
        );
    }

    /// Every order of arrival of one order's story (registered, created, completed, cancelled,
    /// refunded) learns what the in-order run learns. An event that fails (its order not seen
    /// yet) goes to the back of the queue, as SQS brings it back later.
    #[tokio::test]
    async fn every_arrival_order_learns_the_same() {
        const STORY: [&str; 5] = [
            "sqs-user-registered.json",
            "sqs-order-created.json",
            "sqs-order-completed.json",
            "sqs-order-cancelled.json",
            "sqs-payment-refunded.json",
        ];
        async fn run(order: &[usize]) -> (Profile, Option<OrderSeen>, String) {
            let (store, claims) = (MemoryStore::default(), MemoryIdempotency::default());
            let mut queue: std::collections::VecDeque<usize> = order.iter().copied().collect();
            let mut deliveries = 0;
            while let Some(next) = queue.pop_front() {
                deliveries += 1;
                assert!(deliveries < 50, "never settles: {order:?}");
                let envelope = testkit::requests::sqs_envelope(STORY[next]);
                if handle(&store, &claims, &Catalogue, envelope).await.is_err() {
                    queue.push_back(next);
                }
            }
            let seller = store.seller(SELLER).await.unwrap();
            let summary = format!(
                "{} {} {} {:?}",
                seller.orders,
                seller.units_sold,
                seller.revenue_cents,
                store.popular(10).await.unwrap()
            );
            (
                store.profile(CUSTOMER).await.unwrap(),
                store.order("ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E").await.unwrap(),
                summary,
            )
        }
        let in_order = run(&[0, 1, 2, 3, 4]).await;
        assert_eq!(in_order.1.as_ref().map(|o| o.status.as_str()), Some("refunded"));
        let mut permutations: Vec<Vec<usize>> = vec![vec![]];
        for _ in 0..STORY.len() {
            let mut longer = Vec::new();
            for prefix in &permutations {
                for next in (0..STORY.len()).filter(|i| !prefix.contains(i)) {
                    longer.push([prefix.as_slice(), &[next]].concat());
                }
            }
            permutations = longer;
        }
        assert_eq!(permutations.len(), 120);
        for order in permutations {
            assert_eq!(run(&order).await, in_order, "arrival order {order:?}");
        }
    }

    /// Two batches completing two orders of one user at once: both read the profile before
    /// either writes it, and neither purchase may be lost (or recommended again).
    #[tokio::test]
    async fn concurrent_completions_keep_every_purchase() {
        use shared::events::{Event, OrderCompleted};
        let (store, claims) = (MemoryStore::default(), MemoryIdempotency::default());
        let order = |order_id: &str, product_id: &str| OrderSeen {
            order_id: order_id.into(),
            user_id: CUSTOMER.into(),
            items: vec![shared::events::OrderItem {
                product_id: product_id.into(),
                seller_id: SELLER.into(),
                quantity: 1,
                unit_price_cents: 1299,
            }],
            total_cents: 1299,
            status: "placed".into(),
            completed: false,
        };
        store.save_order(&order("ord_a", "prd_catan")).await.unwrap();
        store.save_order(&order("ord_b", "prd_01JD4RZX0A1B2C3D4E5F6G7H8J")).await.unwrap();
        let completed = |order_id: &str| {
            let done = OrderCompleted { order_id: order_id.into(), user_id: CUSTOMER.into(), total_cents: 1299 };
            shared::Envelope::new(Event::OrderCompleted(done), &CorrelationId::generate())
        };
        let (a, b) = tokio::join!(
            handle(&store, &claims, &Catalogue, completed("ord_a")),
            handle(&store, &claims, &Catalogue, completed("ord_b"))
        );
        a.unwrap();
        b.unwrap();
        let mut bought = store.profile(CUSTOMER).await.unwrap().bought;
        bought.sort();
        assert_eq!(bought, ["prd_01JD4RZX0A1B2C3D4E5F6G7H8J", "prd_catan"]);
    }
}
