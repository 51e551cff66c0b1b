//! The port the Order handlers keep orders through (and the events they owe);
//! [`dynamo::DynamoStore`] on AWS, [`memory::MemoryStore`] in tests.

pub mod dynamo;
pub mod memory;

use std::future::Future;

use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::dynamo::DynamoError;
use shared::outbox::Outbox;
use shared::pagination::{Page, PageRequest};

use crate::domain::{Order, OrderStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the order changed concurrently")]
    Conflict,
    #[error("the order store is unavailable: {0}")]
    Unavailable(#[from] DynamoError),
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
