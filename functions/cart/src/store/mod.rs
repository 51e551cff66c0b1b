//! The port the Cart handlers keep carts and checkout records through;
//! [`dynamo::DynamoStore`] on AWS, [`memory::MemoryStore`] in tests and the simulation.

pub mod dynamo;
pub mod memory;

use std::future::Future;

use shared::dynamo::DynamoError;

use crate::domain::{Cart, Checkout};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the cart store is unavailable: {0}")]
    Unavailable(#[from] DynamoError),
}

pub trait CartStore: Send + Sync {
    /// The user's cart (empty if none) and its version.
    fn cart(&self, user_id: &str) -> impl Future<Output = Result<(Cart, u64), StoreError>> + Send;
    /// Saves `cart` if it is still at `version`; `false` if it changed meanwhile.
    fn save_cart(&self, cart: &Cart, version: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn checkout(&self, user_id: &str, key: &str) -> impl Future<Output = Result<Option<Checkout>, StoreError>> + Send;
    /// Records `next` if the record is still `previous` (or absent, for `None`); `false` if
    /// another request got there first. Every change of a checkout record goes through this.
    fn save_checkout(
        &self,
        next: &Checkout,
        previous: Option<&Checkout>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Checkouts still running (or being undone) whose lease ran out before `before`, for
    /// the reconciler; at most `limit`, oldest first.
    fn stale_checkouts(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: i32,
    ) -> impl Future<Output = Result<Vec<Checkout>, StoreError>> + Send;
    /// Remembers a completed purchase (once per order).
    fn record_purchase(
        &self,
        user_id: &str,
        order_id: &str,
        total_cents: u64,
        completed_at: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
