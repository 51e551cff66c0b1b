//! The port the Order handlers keep orders through (and the events they owe);
//! [`dynamo::DynamoStore`] on AWS, [`MemoryStore`] in tests.

pub mod dynamo;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::outbox::{MemoryOutbox, Outbox};
use shared::pagination::{Page, PageRequest};

use crate::domain::{Order, OrderStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the order changed concurrently")]
    Conflict,
    #[error("the order store is unavailable: {0}")]
    Unavailable(String),
    #[error("the cursor was not given out for this list")]
    BadCursor,
    /// The checkout that chose this order id gave it up: no order may be made with it.
    #[error("the order id was abandoned by its checkout")]
    Abandoned,
}

/// What abandoning an order id found.
#[derive(Debug, Clone, PartialEq)]
pub enum Abandon {
    /// No order has the id, and none ever will.
    Abandoned,
    /// The order was made before: nothing is abandoned.
    Exists(Box<StoredOrder>),
}

/// An order with what only the service needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredOrder {
    #[serde(flatten)]
    pub order: Order,
    pub reservation_id: String,
}

pub trait OrderStore: Send + Sync {
    /// Where the events this store writes with its changes wait to be published.
    type Outbox: Outbox;
    fn outbox(&self) -> &Self::Outbox;
    /// Stores a new order with its `order.created`; if the id exists, returns that order;
    /// [`StoreError::Abandoned`] if its checkout gave the id up.
    fn create(
        &self,
        order: &StoredOrder,
        event: &Envelope,
    ) -> impl Future<Output = Result<Option<StoredOrder>, StoreError>> + Send;
    fn get(&self, order_id: &str) -> impl Future<Output = Result<Option<StoredOrder>, StoreError>> + Send;
    /// Gives up `order_id` for good (a tombstone, so a late create fails), unless an order
    /// has it already.
    fn abandon(&self, order_id: &str) -> impl Future<Output = Result<Abandon, StoreError>> + Send;
    /// A user's orders, newest first.
    fn list(&self, user_id: &str, page: &PageRequest) -> impl Future<Output = Result<Page<Order>, StoreError>> + Send;
    /// Replaces an order that is still in `expected` status, with its event, in one write.
    fn replace(
        &self,
        order: &StoredOrder,
        expected: OrderStatus,
        event: &Envelope,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    orders: Mutex<HashMap<String, StoredOrder>>,
    abandoned: Mutex<std::collections::HashSet<String>>,
    pub outbox: MemoryOutbox,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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
