//! The ai-events-queue consumer: keeps profiles, orders, co-purchases, popularity and seller
//! sales from `user.*`, `order.*` and `payment.*`. Each event is claimed first (shared
//! idempotency), so a redelivery counts nothing twice; an event about an order not seen yet
//! is retried by the queue.

use std::time::Duration;

use shared::events::Event;
use shared::idempotency::{IdempotencyStore, OnceError, key, once};
use shared::{CorrelationId, Envelope};

use crate::domain::OrderSeen;
use crate::services::Services;
use crate::store::AiStore;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Retry(String);

pub async fn handle<S: AiStore, I: IdempotencyStore, X: Services>(
    store: &S,
    claims: &I,
    services: &X,
    envelope: Envelope,
) -> Result<(), Retry> {
    let cid = CorrelationId::from_header(Some(&envelope.correlationid));
    let work = || learn(store, services, &envelope.event, &cid);
    match once(claims, &key("learn", &envelope.id), Duration::from_secs(60), work).await {
        Ok(_) => Ok(()),
        Err(OnceError::Work(error)) => Err(Retry(error)),
        Err(OnceError::Idempotency(error)) => Err(Retry(error.to_string())),
    }
}

async fn learn<S: AiStore, X: Services>(
    store: &S,
    services: &X,
    event: &Event,
    cid: &CorrelationId,
) -> Result<(), String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    match event {
        Event::UserRegistered(user) => {
            let mut profile = store.profile(&user.user_id).await.map_err(|e| text(&e))?;
            profile.name = user.name.clone();
            store.save_profile(&profile).await.map_err(|e| text(&e))
        }
        Event::OrderCreated(order) => {
            let ids: Vec<String> = order.items.iter().map(|i| i.product_id.clone()).collect();
            let known = store.products(&ids).await.map_err(|e| text(&e))?;
            let missing: Vec<String> = ids.into_iter().filter(|id| !known.contains_key(id)).collect();
            if !missing.is_empty() {
                for product in services.lookup(&missing, cid).await.map_err(|e| text(&e))? {
                    store.save_product(&product).await.map_err(|e| text(&e))?;
                }
            }
            let items = order
                .items
                .iter()
                .map(|i| (i.product_id.clone(), i.seller_id.clone(), i.quantity, i.unit_price_cents))
                .collect();
            let seen = OrderSeen {
                order_id: order.order_id.clone(),
                user_id: order.user_id.clone(),
                items,
                total_cents: order.total_cents,
                status: "placed".into(),
            };
            store.save_order(&seen).await.map_err(|e| text(&e))?;
            let mut profile = store.profile(&order.user_id).await.map_err(|e| text(&e))?;
            profile.latest_order = Some(order.order_id.clone());
            store.save_profile(&profile).await.map_err(|e| text(&e))
        }
        Event::OrderCompleted(done) => {
            let mut order = store
                .order(&done.order_id)
                .await
                .map_err(|e| text(&e))?
                .ok_or_else(|| format!("order {} not seen yet", done.order_id))?;
            if rank(&order.status) >= rank("paid") {
                return Ok(());
            }
            let ids: Vec<String> = order.items.iter().map(|i| i.0.clone()).collect();
            let products = store.products(&ids).await.map_err(|e| text(&e))?;
            let mut profile = store.profile(&order.user_id).await.map_err(|e| text(&e))?;
            for (product_id, _, quantity, _) in &order.items {
                if !profile.bought.contains(product_id) {
                    profile.bought.push(product_id.clone());
                }
                if let Some(product) = products.get(product_id) {
                    *profile.categories.entry(product.category.clone()).or_default() += u64::from(*quantity);
                }
            }
            store.save_profile(&profile).await.map_err(|e| text(&e))?;
            order.status = "paid".into();
            store.save_order(&order).await.map_err(|e| text(&e))?;
            // Last: the counters are not idempotent, and the order, now `paid`, is not
            // counted again if this fails half-way (an undercount rather than a double one).
            store.add_sale(&order).await.map_err(|e| text(&e))
        }
        Event::OrderCancelled(order) => set_status(store, &order.order_id, "cancelled").await,
        Event::PaymentFailed(payment) => set_status(store, &payment.order_id, "payment_failed").await,
        Event::PaymentRefunded(payment) => set_status(store, &payment.order_id, "refunded").await,
        Event::PaymentCompleted(_) | Event::InventoryUpdated(_) => Ok(()),
    }
}

/// How far along an order is: statuses only move forward, whatever order events come in.
fn rank(status: &str) -> u8 {
    match status {
        "placed" => 0,
        "paid" => 1,
        _ => 2,
    }
}

/// News about an order's status; about an order not seen yet there is nothing to keep.
async fn set_status<S: AiStore>(store: &S, order_id: &str, status: &str) -> Result<(), String> {
    if let Some(mut order) = store.order(order_id).await.map_err(|e| e.to_string())?
        && rank(status) > rank(&order.status)
    {
        order.status = status.to_owned();
        store.save_order(&order).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
