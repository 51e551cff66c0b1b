//! Orders in memory, for the handler tests and the money-path simulation.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use shared::Envelope;
use shared::memory::lock;
use shared::outbox::MemoryOutbox;
use shared::pagination::{Page, PageRequest};

use super::{Abandon, OrderStore, ShipmentRef, StoreError, StoredOrder};
use crate::domain::{Order, Shipment, ShipmentStatus};

#[derive(Debug, Default)]
pub struct MemoryStore {
    orders: Mutex<HashMap<String, StoredOrder>>,
    abandoned: Mutex<HashSet<String>>,
    pub outbox: MemoryOutbox,
}

impl OrderStore for MemoryStore {
    type Outbox = MemoryOutbox;

    fn outbox(&self) -> &MemoryOutbox {
        &self.outbox
    }

    async fn create(&self, order: &StoredOrder, event: &Envelope) -> Result<Option<StoredOrder>, StoreError> {
        let mut orders = lock(&self.orders);
        if let Some(existing) = orders.get(&order.order.order_id) {
            return Ok(Some(existing.clone()));
        }
        if lock(&self.abandoned).contains(&order.order.order_id) {
            return Err(StoreError::Abandoned);
        }
        orders.insert(order.order.order_id.clone(), order.clone());
        self.outbox.add(event);
        Ok(None)
    }

    async fn get(&self, order_id: &str) -> Result<Option<StoredOrder>, StoreError> {
        Ok(lock(&self.orders).get(order_id).cloned())
    }

    async fn abandon(&self, order_id: &str) -> Result<Abandon, StoreError> {
        let orders = lock(&self.orders);
        if let Some(existing) = orders.get(order_id) {
            return Ok(Abandon::Exists(Box::new(existing.clone())));
        }
        lock(&self.abandoned).insert(order_id.to_owned());
        Ok(Abandon::Abandoned)
    }

    async fn list(&self, user_id: &str, page: &PageRequest) -> Result<Page<Order>, StoreError> {
        let mut mine: Vec<Order> =
            lock(&self.orders).values().filter(|o| o.order.user_id == user_id).map(|o| o.order.clone()).collect();
        mine.sort_by(|a, b| b.order_id.cmp(&a.order_id));
        Ok(Page { items: mine.into_iter().take(page.limit as usize).collect(), next_cursor: None })
    }

    async fn replace(&self, order: &StoredOrder, expected_version: u64, event: &Envelope) -> Result<(), StoreError> {
        let mut orders = lock(&self.orders);
        match orders.get_mut(&order.order.order_id) {
            Some(current) if current.version == expected_version => {
                *current = order.clone();
                self.outbox.add(event);
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }

    async fn shipment(&self, shipment_id: &str) -> Result<Option<ShipmentRef>, StoreError> {
        let orders = lock(&self.orders);
        let found = orders.values().flat_map(|o| &o.order.shipments).find(|s| s.shipment_id == shipment_id);
        Ok(found.map(|s| ShipmentRef { order_id: s.order_id.clone(), seller_id: s.seller_id.clone() }))
    }

    async fn shipments(
        &self,
        seller_id: &str,
        status: ShipmentStatus,
        page: &PageRequest,
    ) -> Result<Page<Shipment>, StoreError> {
        let orders = lock(&self.orders);
        let mut theirs: Vec<Shipment> = orders
            .values()
            .filter(|o| o.order.status.is_fulfilled_by_sellers())
            .flat_map(|o| &o.order.shipments)
            .filter(|s| s.seller_id == seller_id && s.status == status)
            .cloned()
            .collect();
        theirs.sort_by(|a, b| b.shipment_id.cmp(&a.shipment_id));
        Ok(Page { items: theirs.into_iter().take(page.limit as usize).collect(), next_cursor: None })
    }
}

#[cfg(test)]
pub use meanwhile::Meanwhile;

/// A store for the handlers' race tests.
#[cfg(test)]
mod meanwhile {
    use shared::Envelope;

    use super::MemoryStore;
    use crate::domain::{Order, ShipmentStatus};
    use crate::store::{OrderStore, StoreError};

    /// An order store where `meanwhile` moves the order once, right after a handler's first
    /// read of it: the other writer of a race.
    pub struct Meanwhile {
        pub inner: MemoryStore,
        pub meanwhile: std::sync::Mutex<Option<crate::domain::Order>>,
    }

    impl Meanwhile {
        pub fn around(inner: MemoryStore) -> Self {
            Self { inner, meanwhile: None.into() }
        }
    }

    impl OrderStore for Meanwhile {
        type Outbox = shared::outbox::MemoryOutbox;

        fn outbox(&self) -> &Self::Outbox {
            self.inner.outbox()
        }

        async fn create(
            &self,
            order: &crate::store::StoredOrder,
            event: &Envelope,
        ) -> Result<Option<crate::store::StoredOrder>, StoreError> {
            self.inner.create(order, event).await
        }

        async fn get(&self, order_id: &str) -> Result<Option<crate::store::StoredOrder>, StoreError> {
            let read = self.inner.get(order_id).await?;
            let moved = self.meanwhile.lock().unwrap().take();
            if let (Some(current), Some(moved)) = (&read, moved) {
                let event = testkit::requests::sqs_envelope("sqs-order-completed.json");
                self.inner.replace(&current.next(moved), current.version, &event).await?;
            }
            Ok(read)
        }

        async fn abandon(&self, order_id: &str) -> Result<crate::store::Abandon, StoreError> {
            self.inner.abandon(order_id).await
        }

        async fn list(
            &self,
            user_id: &str,
            page: &shared::pagination::PageRequest,
        ) -> Result<shared::pagination::Page<Order>, StoreError> {
            self.inner.list(user_id, page).await
        }

        async fn replace(
            &self,
            order: &crate::store::StoredOrder,
            expected_version: u64,
            event: &Envelope,
        ) -> Result<(), StoreError> {
            self.inner.replace(order, expected_version, event).await
        }

        async fn shipment(&self, shipment_id: &str) -> Result<Option<crate::store::ShipmentRef>, StoreError> {
            self.inner.shipment(shipment_id).await
        }

        async fn shipments(
            &self,
            seller_id: &str,
            status: ShipmentStatus,
            page: &shared::pagination::PageRequest,
        ) -> Result<shared::pagination::Page<crate::domain::Shipment>, StoreError> {
            self.inner.shipments(seller_id, status, page).await
        }
    }
}
