//! The port the Cart handlers keep carts and checkout records through;
//! [`dynamo::DynamoStore`] on AWS, [`MemoryStore`] in tests.

pub mod dynamo;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::domain::{Cart, Checkout};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the cart store is unavailable: {0}")]
    Unavailable(String),
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

#[derive(Debug, Default)]
pub struct MemoryStore {
    carts: Mutex<HashMap<String, (Cart, u64)>>,
    checkouts: Mutex<HashMap<(String, String), Checkout>>,
    pub purchases: Mutex<HashMap<String, (String, u64)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl CartStore for MemoryStore {
    async fn cart(&self, user_id: &str) -> Result<(Cart, u64), StoreError> {
        Ok(lock(&self.carts).get(user_id).cloned().unwrap_or_else(|| (Cart::empty(user_id), 0)))
    }

    async fn save_cart(&self, cart: &Cart, version: u64) -> Result<bool, StoreError> {
        let mut carts = lock(&self.carts);
        let current = carts.get(&cart.user_id).map_or(0, |(_, v)| *v);
        if current != version {
            return Ok(false);
        }
        carts.insert(cart.user_id.clone(), (cart.clone(), version + 1));
        Ok(true)
    }

    async fn checkout(&self, user_id: &str, key: &str) -> Result<Option<Checkout>, StoreError> {
        Ok(lock(&self.checkouts).get(&(user_id.to_owned(), key.to_owned())).cloned())
    }

    async fn save_checkout(&self, next: &Checkout, previous: Option<&Checkout>) -> Result<bool, StoreError> {
        let mut checkouts = lock(&self.checkouts);
        let id = (next.user_id.clone(), next.key.clone());
        if checkouts.get(&id) != previous {
            return Ok(false);
        }
        checkouts.insert(id, next.clone());
        Ok(true)
    }

    async fn stale_checkouts(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: i32,
    ) -> Result<Vec<Checkout>, StoreError> {
        let mut stale: Vec<Checkout> =
            lock(&self.checkouts).values().filter(|c| c.is_open() && c.lease_until < before).cloned().collect();
        stale.sort_by_key(|c| c.lease_until);
        stale.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(stale)
    }

    async fn record_purchase(
        &self,
        user_id: &str,
        order_id: &str,
        total_cents: u64,
        _completed_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        lock(&self.purchases).insert(order_id.to_owned(), (user_id.to_owned(), total_cents));
        Ok(())
    }
}
