//! The ai-events-queue consumer: keeps profiles, orders, co-purchases, popularity and seller
//! sales from `user.*`, `order.*` and `payment.*`. Each event is claimed first (shared
//! idempotency), so a redelivery counts nothing twice; an event about an order not seen yet
//! is retried by the queue. Whatever order events arrive in, the result is the same: statuses
//! only move up one ranking, and the latest order is the newest id, not the last one seen.

use std::time::Duration;

use shared::events::Event;
use shared::idempotency::{IdempotencyStore, OnceError, key, once};
use shared::{CorrelationId, Envelope};

use crate::domain::{OrderSeen, Profile};
use crate::services::Services;
use crate::store::{AiStore, update_profile};

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
            let named = |profile: &mut Profile| {
                profile.name = user.name.clone();
                true
            };
            update_profile(store, &user.user_id, named).await.map_err(|e| text(&e))
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
            let seen = OrderSeen {
                order_id: order.order_id.clone(),
                user_id: order.user_id.clone(),
                items: order.items.clone(),
                total_cents: order.total_cents,
                status: "placed".into(),
                completed: false,
            };
            store.save_order(&seen).await.map_err(|e| text(&e))?;
            let latest = |profile: &mut Profile| {
                // Order ids are ULIDs: the newest sorts last.
                let newer = profile.latest_order.as_ref().is_none_or(|latest| *latest < order.order_id);
                if newer {
                    profile.latest_order = Some(order.order_id.clone());
                }
                newer
            };
            update_profile(store, &order.user_id, latest).await.map_err(|e| text(&e))
        }
        Event::OrderCompleted(done) => {
            let mut order = store
                .order(&done.order_id)
                .await
                .map_err(|e| text(&e))?
                .ok_or_else(|| format!("order {} not seen yet", done.order_id))?;
            if order.completed {
                return Ok(());
            }
            let ids: Vec<String> = order.items.iter().map(|i| i.product_id.clone()).collect();
            let products = store.products(&ids).await.map_err(|e| text(&e))?;
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
            update_profile(store, &order.user_id, bought).await.map_err(|e| text(&e))?;
            order.completed = true;
            if rank(&order.status) < rank("paid") {
                order.status = "paid".into();
            }
            store.save_order(&order).await.map_err(|e| text(&e))?;
            // Last: the counters are not idempotent, and the order, now `completed`, is not
            // counted again if this fails half-way (an undercount rather than a double one).
            store.add_sale(&order).await.map_err(|e| text(&e))
        }
        Event::OrderCancelled(order) => set_status(store, &order.order_id, "cancelled").await,
        Event::PaymentFailed(payment) => set_status(store, &payment.order_id, "payment_failed").await,
        Event::PaymentRefunded(payment) => set_status(store, &payment.order_id, "refunded").await,
        Event::PaymentCompleted(_) | Event::InventoryUpdated(_) => Ok(()),
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
async fn set_status<S: AiStore>(store: &S, order_id: &str, status: &str) -> Result<(), String> {
    let mut order = store
        .order(order_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("order {order_id} not seen yet"))?;
    if rank(status) > rank(&order.status) {
        order.status = status.to_owned();
        store.save_order(&order).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
