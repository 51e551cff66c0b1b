//! The carts and checkout records of tests and the money-path simulation, in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use shared::memory::lock;

use super::{CartStore, StoreError};
use crate::domain::{Cart, Checkout};

#[derive(Debug, Default)]
pub struct MemoryStore {
    carts: Mutex<HashMap<String, (Cart, u64)>>,
    checkouts: Mutex<HashMap<(String, String), Checkout>>,
    pub purchases: Mutex<HashMap<String, (String, u64)>>,
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
        // Ties (records abandoned in one reconciler run share a lease) in a fixed order, not
        // the HashMap's: the money-path simulation replays a seed exactly.
        stale.sort_by(|a, b| (a.lease_until, &a.user_id, &a.key).cmp(&(b.lease_until, &b.user_id, &b.key)));
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
