//! The seller-updates-queue consumer: `order.created` commits the order's reservation,
//! `order.cancelled` releases it (held or committed units go back); either way each product
//! touched gets an `inventory.updated` with its stock now. The reservation's conditional
//! status change makes a redelivery change no stock; the stock events are re-sent then,
//! which consumers take as they are (the latest stock). `user.registered` of a seller makes
//! their `pending` profile, on the condition that there is none: a redelivery changes nothing.

use shared::events::{Event, InventoryUpdated};
use shared::publisher::Publish;
use shared::{CorrelationId, Envelope, Retry};

use crate::domain::Seller;
use crate::store::{CatalogueStore, SellerStore};

pub async fn handle<S: CatalogueStore + SellerStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    envelope: Envelope,
) -> Result<(), Retry> {
    let correlation_id = CorrelationId::from_header(Some(&envelope.correlationid));
    let (reservation, reason) = match &envelope.event {
        Event::UserRegistered(user) => {
            if let Some(seller) = Seller::pending(user, envelope.time) {
                let created = store.create_seller(&seller).await.map_err(Retry::because)?;
                tracing::info!(seller_id = %seller.seller_id, created, "seller profile pending approval");
            }
            return Ok(());
        }
        Event::OrderCreated(order) => {
            (store.commit(&order.reservation_id).await.map_err(Retry::because)?, "reservation_committed")
        }
        Event::OrderCancelled(order) => {
            (store.release(&order.reservation_id, true).await.map_err(Retry::because)?, "reservation_released")
        }
        _ => return Ok(()),
    };
    let Some(reservation) = reservation else {
        // An order always has a reservation first: not visible yet, so try again later.
        return Err(Retry::because("the order's reservation is not visible yet"));
    };
    let ids: Vec<String> = reservation.items.iter().map(|l| l.product_id.clone()).collect();
    for product in store.lookup(&ids).await.map_err(Retry::because)? {
        let event = InventoryUpdated {
            product_id: product.product_id,
            seller_id: product.seller_id,
            stock: product.stock,
            reason: reason.into(),
        };
        publisher
            .publish(&Envelope::new(Event::InventoryUpdated(event), &correlation_id))
            .await
            .map_err(Retry::because)?;
    }
    tracing::info!(reservation_id = %reservation.reservation_id, status = ?reservation.status, "reservation settled by its order");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NewProduct, ReservationStatus};
    use crate::store::memory::MemoryStore;
    use shared::contracts::ReservationLine;
    use shared::publisher::MemoryPublisher;

    /// The products and the reservation of the samples' order.
    async fn reserved() -> MemoryStore {
        let store = MemoryStore::default();
        for (id, stock) in [("prd_01JD4RZX0A1B2C3D4E5F6G7H8J", 10), ("prd_01JD4RZX9Z8Y7X6W5V4T3S2R1Q", 5)] {
            let new = NewProduct {
                name: id.into(),
                description: None,
                category: "books".into(),
                price_cents: 100,
                stock,
                stock_shards: None,
            };
            let mut product = new.validate("usr_01JD4RY9K8J7H6G5F4E3D2C1B0", chrono::Utc::now()).unwrap();
            product.product_id = id.into();
            store.create(&product).await.unwrap();
        }
        let lines = vec![
            ReservationLine { product_id: "prd_01JD4RZX0A1B2C3D4E5F6G7H8J".into(), quantity: 2 },
            ReservationLine { product_id: "prd_01JD4RZX9Z8Y7X6W5V4T3S2R1Q".into(), quantity: 1 },
        ];
        store.reserve("rsv_01JD4S5V0B1C2D3E4F5G6H7J8K", &lines).await.unwrap();
        store
    }

    async fn stock(store: &MemoryStore) -> (u32, u32) {
        let a = store.get("prd_01JD4RZX0A1B2C3D4E5F6G7H8J").await.unwrap().unwrap().stock;
        let b = store.get("prd_01JD4RZX9Z8Y7X6W5V4T3S2R1Q").await.unwrap().unwrap().stock;
        (a, b)
    }

    #[tokio::test]
    async fn created_commits_and_cancelled_gives_units_back_once() {
        let (store, publisher) = (reserved().await, MemoryPublisher::default());
        for _ in 0..2 {
            handle(&store, &publisher, testkit::requests::sqs_envelope("sqs-order-created.json")).await.unwrap();
        }
        assert_eq!(stock(&store).await, (8, 4));
        assert_eq!(
            store.commit("rsv_01JD4S5V0B1C2D3E4F5G6H7J8K").await.unwrap().unwrap().status,
            ReservationStatus::Committed
        );
        for _ in 0..2 {
            handle(&store, &publisher, testkit::requests::sqs_envelope("sqs-order-cancelled.json")).await.unwrap();
        }
        assert_eq!(stock(&store).await, (10, 5), "restocked once");
        let last = publisher.published().last().cloned().unwrap();
        let Event::InventoryUpdated(update) = last.event else { panic!("not inventory.updated") };
        assert_eq!(update.reason, "reservation_released");
    }

    #[tokio::test]
    async fn a_sellers_registration_makes_one_pending_profile_and_a_customers_none() {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        let mut envelope = testkit::requests::sqs_envelope("sqs-user-registered.json");
        handle(&store, &publisher, envelope.clone()).await.unwrap();
        let Event::UserRegistered(user) = &mut envelope.event else { panic!("not user.registered") };
        assert!(store.seller(&user.user_id).await.unwrap().is_none(), "the sample is a customer's");
        user.role = shared::events::Role::Seller;
        let seller_id = user.user_id.clone();
        handle(&store, &publisher, envelope.clone()).await.unwrap();
        store
            .move_seller(&seller_id, crate::domain::SellerStatus::Approved, None, &shared::CorrelationId::generate())
            .await
            .unwrap();
        handle(&store, &publisher, envelope).await.unwrap();
        let profile = store.seller(&seller_id).await.unwrap().unwrap();
        assert_eq!(profile.status, crate::domain::SellerStatus::Approved, "a redelivery changes nothing");
        assert!(publisher.published().is_empty());
    }

    #[tokio::test]
    async fn an_unknown_reservation_is_retried() {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        assert!(handle(&store, &publisher, testkit::requests::sqs_envelope("sqs-order-created.json")).await.is_err());
    }
}
