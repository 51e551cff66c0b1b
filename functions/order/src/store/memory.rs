//! Orders in memory, for the handler tests and the money-path simulation.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use shared::Envelope;
use shared::memory::lock;
use shared::outbox::MemoryOutbox;
use shared::pagination::{Page, PageRequest};

use super::{Abandon, OrderStore, StoreError, StoredOrder};
use crate::domain::{Order, OrderStatus};

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

    async fn replace(&self, order: &StoredOrder, expected: OrderStatus, event: &Envelope) -> Result<(), StoreError> {
        let mut orders = lock(&self.orders);
        match orders.get_mut(&order.order.order_id) {
            Some(current) if current.order.status == expected => {
                *current = order.clone();
                self.outbox.add(event);
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }
}
