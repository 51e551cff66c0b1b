//! The cart-events-queue consumer: `user.registered` creates the new user's empty cart,
//! `order.completed` records the purchase. Both are writes keyed so that a redelivery
//! changes nothing.

use shared::events::Event;
use shared::{Envelope, Retry};

use crate::domain::Cart;
use crate::store::CartStore;

pub async fn handle<S: CartStore>(store: &S, envelope: Envelope) -> Result<(), Retry> {
    match envelope.event {
        Event::UserRegistered(user) => {
            // Version 0 means "no cart yet": an existing cart is left as it is.
            let created = store.save_cart(&Cart::empty(&user.user_id), 0).await.map_err(Retry::because)?;
            tracing::info!(user_id = %user.user_id, created, "cart ready");
        }
        Event::OrderCompleted(order) => {
            // The event's time, not ours: a redelivery then writes the very same record.
            store
                .record_purchase(&order.user_id, &order.order_id, order.total_cents, envelope.time)
                .await
                .map_err(Retry::because)?
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn replaying_twice_is_the_same_as_once() {
        let store = MemoryStore::default();
        for _ in 0..2 {
            handle(&store, testkit::requests::sqs_envelope("sqs-user-registered.json")).await.unwrap();
            handle(&store, testkit::requests::sqs_envelope("sqs-order-completed.json")).await.unwrap();
        }
        let (cart, version) = store.cart("usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A").await.unwrap();
        assert_eq!((cart.items.len(), version), (0, 1), "one empty cart");
        assert_eq!(store.purchases.lock().unwrap().len(), 1);
    }
}
