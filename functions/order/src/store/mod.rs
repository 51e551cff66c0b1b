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
use shared::publisher::Publish;

use crate::domain::{Order, Shipment, ShipmentStatus};

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
    /// Counts the order's changes: each is written on condition that the order is still at
    /// the version it was decided on, so two moves decided on the same state (a cancel and a
    /// ship, two sellers shipping the last two shipments) never both land. 0 for orders
    /// stored before it was kept.
    #[serde(default)]
    pub version: u64,
}

/// Writes `moved` (`current` after one move) with the `event` that reports it, on condition
/// that the order is still as `current` was read, then publishes the event (the outbox relay
/// does, if that fails): the order as stored now. `None`: the order moved meanwhile, nothing
/// was written; decide again on what it is now.
pub async fn record<S: OrderStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    current: &StoredOrder,
    moved: Order,
    event: Envelope,
) -> Result<Option<StoredOrder>, StoreError> {
    let stored = current.next(moved);
    match store.replace(&stored, current.version, &event).await {
        Ok(()) => {
            shared::outbox::deliver(store.outbox(), publisher, &[event]).await;
            Ok(Some(stored))
        }
        Err(StoreError::Conflict) => Ok(None),
        Err(error) => Err(error),
    }
}

impl StoredOrder {
    /// `order`, the next change of this stored order.
    pub fn next(&self, order: Order) -> StoredOrder {
        StoredOrder { order, reservation_id: self.reservation_id.clone(), version: self.version + 1 }
    }
}

/// Whose a shipment is and which order it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentRef {
    pub order_id: String,
    pub seller_id: String,
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
    /// Replaces an order that is still at `expected_version` (and its shipments, as sellers
    /// see them), with its event, in one write; [`StoreError::Conflict`] if it moved.
    fn replace(
        &self,
        order: &StoredOrder,
        expected_version: u64,
        event: &Envelope,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Which order and seller the shipment `shipment_id` belongs to.
    fn shipment(&self, shipment_id: &str) -> impl Future<Output = Result<Option<ShipmentRef>, StoreError>> + Send;
    /// `seller_id`'s shipments in `status` of orders that are paid (or beyond), newest first.
    fn shipments(
        &self,
        seller_id: &str,
        status: ShipmentStatus,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Shipment>, StoreError>> + Send;
}
