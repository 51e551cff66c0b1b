//! AI Buddy's store in memory, for the handler and consumer tests.

use std::collections::HashMap;
use std::sync::Mutex;

use shared::memory::lock;

use super::{AiStore, SaleParts, SellerSummary, StoreError, sale_parts};
use crate::domain::{OrderSeen, ProductInfo, Profile};

#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Each with its version.
    profiles: Mutex<HashMap<String, (Profile, u64)>>,
    orders: Mutex<HashMap<String, OrderSeen>>,
    products: Mutex<HashMap<String, ProductInfo>>,
    popular: Mutex<HashMap<String, u64>>,
    together: Mutex<HashMap<(String, String), u64>>,
    sellers: Mutex<HashMap<String, SellerSummary>>,
}

impl AiStore for MemoryStore {
    async fn versioned_profile(&self, user_id: &str) -> Result<(Profile, u64), StoreError> {
        let found = lock(&self.profiles)
            .get(user_id)
            .cloned()
            .unwrap_or_else(|| (Profile { user_id: user_id.into(), ..Profile::default() }, 0));
        // As a real read would, give other tasks a turn: concurrent updates then interleave.
        tokio::task::yield_now().await;
        Ok(found)
    }
    async fn save_profile(&self, profile: &Profile, version: u64) -> Result<bool, StoreError> {
        let mut profiles = lock(&self.profiles);
        if profiles.get(&profile.user_id).map_or(0, |(_, v)| *v) != version {
            return Ok(false);
        }
        profiles.insert(profile.user_id.clone(), (profile.clone(), version + 1));
        Ok(true)
    }
    async fn order(&self, order_id: &str) -> Result<Option<OrderSeen>, StoreError> {
        Ok(lock(&self.orders).get(order_id).cloned())
    }
    async fn save_order(&self, order: &OrderSeen) -> Result<(), StoreError> {
        lock(&self.orders).insert(order.order_id.clone(), order.clone());
        Ok(())
    }
    async fn products(&self, ids: &[String]) -> Result<HashMap<String, ProductInfo>, StoreError> {
        let products = lock(&self.products);
        Ok(ids.iter().filter_map(|id| products.get(id).map(|p| (id.clone(), p.clone()))).collect())
    }
    async fn save_product(&self, product: &ProductInfo) -> Result<(), StoreError> {
        lock(&self.products).insert(product.product_id.clone(), product.clone());
        Ok(())
    }
    async fn add_sale(&self, order: &OrderSeen) -> Result<(), StoreError> {
        let SaleParts(units, pairs, sellers) = sale_parts(order);
        for (product, n) in units {
            *lock(&self.popular).entry(product).or_default() += n;
        }
        for pair in pairs {
            *lock(&self.together).entry(pair).or_default() += 1;
        }
        for (seller, (n, revenue)) in sellers {
            let mut all = lock(&self.sellers);
            let summary = all.entry(seller.clone()).or_default();
            summary.orders += 1;
            summary.units_sold += n;
            summary.revenue_cents += revenue;
            for item in order.items.iter().filter(|item| item.seller_id == seller) {
                *summary.units.entry(item.product_id.clone()).or_default() += u64::from(item.quantity);
            }
        }
        Ok(())
    }
    async fn popular(&self, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        let mut all: Vec<(String, u64)> = lock(&self.popular).iter().map(|(k, v)| (k.clone(), *v)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(limit);
        Ok(all)
    }
    async fn together(&self, products: &[String]) -> Result<Vec<(String, String, u64)>, StoreError> {
        Ok(lock(&self.together)
            .iter()
            .filter(|((a, _), _)| products.contains(a))
            .map(|((a, b), n)| (a.clone(), b.clone(), *n))
            .collect())
    }
    async fn seller(&self, seller_id: &str) -> Result<SellerSummary, StoreError> {
        Ok(lock(&self.sellers).get(seller_id).cloned().unwrap_or_default())
    }
}
