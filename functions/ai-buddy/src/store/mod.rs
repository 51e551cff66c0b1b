//! What AI Buddy keeps (profiles, orders seen, products, popularity, co-purchases, seller
//! sales), as a port: [`dynamo::DynamoStore`] on AWS, [`memory::MemoryStore`] in tests.

pub mod dynamo;
pub mod memory;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;

use serde::{Deserialize, Serialize};
use shared::dynamo::DynamoError;

use crate::domain::{OrderSeen, ProductInfo, Profile};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("AI Buddy's store is unavailable: {0}")]
    Unavailable(#[from] DynamoError),
    /// Concurrent writes kept beating a profile change ([`update_profile`]).
    #[error("profile {0} kept changing under {PROFILE_TRIES} tries")]
    KeptChanging(String),
}

/// A seller's sales.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SellerSummary {
    pub orders: u64,
    pub units_sold: u64,
    pub revenue_cents: u64,
    /// product_id -> units.
    pub units: BTreeMap<String, u64>,
}

pub trait AiStore: Send + Sync {
    fn profile(&self, user_id: &str) -> impl Future<Output = Result<Profile, StoreError>> + Send {
        async move { Ok(self.versioned_profile(user_id).await?.0) }
    }
    /// The user's profile (a new one if none) and its version, to change it with
    /// [`AiStore::save_profile`]; see [`update_profile`].
    fn versioned_profile(&self, user_id: &str) -> impl Future<Output = Result<(Profile, u64), StoreError>> + Send;
    /// Writes `profile` if it is still at `version`; false if another write came first.
    fn save_profile(&self, profile: &Profile, version: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn order(&self, order_id: &str) -> impl Future<Output = Result<Option<OrderSeen>, StoreError>> + Send;
    fn save_order(&self, order: &OrderSeen) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn products(&self, ids: &[String])
    -> impl Future<Output = Result<HashMap<String, ProductInfo>, StoreError>> + Send;
    fn save_product(&self, product: &ProductInfo) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Counts a completed order: popularity, co-purchases, its sellers' sales. Not
    /// idempotent by itself: callers claim the event first.
    fn add_sale(&self, order: &OrderSeen) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Units sold per product, most first.
    fn popular(&self, limit: usize) -> impl Future<Output = Result<Vec<(String, u64)>, StoreError>> + Send;
    /// (product, other, orders with both) for each of `products`.
    fn together(
        &self,
        products: &[String],
    ) -> impl Future<Output = Result<Vec<(String, String, u64)>, StoreError>> + Send;
    fn seller(&self, seller_id: &str) -> impl Future<Output = Result<SellerSummary, StoreError>> + Send;
}

/// Tries of a profile change that keeps meeting concurrent writes (then the queue retries).
const PROFILE_TRIES: usize = 5;

/// Applies `change` to a user's profile and writes it only over the version it read: a
/// concurrent batch's change (a purchase) is read again and kept, never overwritten.
/// `change` answers whether it changed anything (nothing to write otherwise).
pub async fn update_profile<S: AiStore>(
    store: &S,
    user_id: &str,
    change: impl Fn(&mut Profile) -> bool + Send + Sync,
) -> Result<(), StoreError> {
    for _ in 0..PROFILE_TRIES {
        let (mut profile, version) = store.versioned_profile(user_id).await?;
        if !change(&mut profile) || store.save_profile(&profile, version).await? {
            return Ok(());
        }
    }
    Err(StoreError::KeptChanging(user_id.to_owned()))
}

/// What an order adds to the counters: units per product, ordered pairs of distinct
/// products, and (units, revenue) per seller.
pub(crate) struct SaleParts(pub Vec<(String, u64)>, pub Vec<(String, String)>, pub HashMap<String, (u64, u64)>);

/// Co-purchases are counted among an order's first products only: pairs grow as n², and a
/// 25-line order would otherwise touch 600 counters (`make bench` showed it flooding the store).
const MAX_PAIRED_PRODUCTS: usize = 10;

pub(crate) fn sale_parts(order: &OrderSeen) -> SaleParts {
    let units: Vec<(String, u64)> =
        order.items.iter().map(|item| (item.product_id.clone(), u64::from(item.quantity))).collect();
    let mut seen = HashSet::new();
    let distinct: Vec<&String> =
        order.items.iter().map(|item| &item.product_id).filter(|p| seen.insert(*p)).take(MAX_PAIRED_PRODUCTS).collect();
    let pairs = distinct
        .iter()
        .flat_map(|a| distinct.iter().filter(move |b| a != *b).map(move |b| ((*a).clone(), (*b).clone())))
        .collect();
    let mut sellers: HashMap<String, (u64, u64)> = HashMap::new();
    for item in &order.items {
        let entry = sellers.entry(item.seller_id.clone()).or_default();
        entry.0 += u64::from(item.quantity);
        entry.1 += u64::from(item.quantity) * item.unit_price_cents;
    }
    SaleParts(units, pairs, sellers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn co_purchases_pair_only_an_orders_first_products() {
        let item = |i| shared::events::OrderItem {
            product_id: format!("p{i:02}"),
            seller_id: "s".into(),
            quantity: 1,
            unit_price_cents: 100,
        };
        let items = (0..25).map(item).collect();
        let order = OrderSeen {
            order_id: "o".into(),
            user_id: "u".into(),
            items,
            total_cents: 2500,
            status: "".into(),
            completed: false,
        };
        let SaleParts(units, pairs, sellers) = sale_parts(&order);
        assert_eq!(units.len(), 25, "every product's units count");
        assert_eq!(pairs.len(), MAX_PAIRED_PRODUCTS * (MAX_PAIRED_PRODUCTS - 1));
        assert!(pairs.iter().all(|(a, b)| a < &"p10".to_owned() && b < &"p10".to_owned() && a != b));
        assert_eq!(sellers["s"], (25, 2500));
    }
}
