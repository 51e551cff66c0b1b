//! What AI Buddy keeps, in its own table (pk/sk): `USER#{id}`/`PROFILE`, `ORDER#{id}`/`ORDER`,
//! `PRODUCT#{id}`/`INFO`, counters `POPULAR`/`{product}`, `TOGETHER#{a}`/`{b}`,
//! `SELLER#{id}`/`SUMMARY` and `SELLER#{id}`/`UNITS#{product}`. [`MemoryStore`] for tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use shared::dynamo::{Item, Table, key};

use crate::domain::{OrderSeen, ProductInfo, Profile};

#[derive(Debug, thiserror::Error)]
#[error("AI Buddy's store is unavailable: {0}")]
pub struct StoreError(pub String);

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
    Err(StoreError(format!("profile {user_id} kept changing under {PROFILE_TRIES} tries")))
}

/// What an order adds to the counters: units per product, ordered pairs of distinct
/// products, and (units, revenue) per seller.
struct SaleParts(Vec<(String, u64)>, Vec<(String, String)>, HashMap<String, (u64, u64)>);

/// Co-purchases are counted among an order's first products only: pairs grow as n², and a
/// 25-line order would otherwise touch 600 counters (`make bench` showed it flooding the store).
const MAX_PAIRED_PRODUCTS: usize = 10;

fn sale_parts(order: &OrderSeen) -> SaleParts {
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

/// Counter updates in flight at once, per invocation.
const CONCURRENT_WRITES: usize = 16;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    table: Table,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

fn number(item: &Item, name: &str) -> u64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn sort_key(item: &Item) -> String {
    item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

impl DynamoStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    /// The AI Buddy table named by `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(Table::from_env(sdk)?))
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, key: Item) -> Result<Option<T>, StoreError> {
        self.table.get(key).await.map_err(unavailable)
    }

    async fn put(&self, key: Item, value: &impl Serialize) -> Result<(), StoreError> {
        self.table.put(key, value).await.map_err(unavailable)
    }

    async fn add(&self, key: Item, counters: &[(&str, u64)]) -> Result<(), StoreError> {
        let expression = format!(
            "ADD {}",
            counters.iter().enumerate().map(|(i, (name, _))| format!("{name} :v{i}")).collect::<Vec<_>>().join(", ")
        );
        let mut update = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key))
            .update_expression(expression);
        for (i, (_, value)) in counters.iter().enumerate() {
            update = update.expression_attribute_values(format!(":v{i}"), AttributeValue::N(value.to_string()));
        }
        update.send().await.map_err(shared::dynamo::error).map_err(unavailable)?;
        Ok(())
    }

    /// Many counter updates, a bounded number at a time (DynamoDB has no batch update): an
    /// order of n products touches n² co-purchase counters.
    async fn add_all(&self, counters: Vec<(Item, Vec<(&'static str, u64)>)>) -> Result<(), StoreError> {
        for chunk in counters.chunks(CONCURRENT_WRITES) {
            futures_util::future::try_join_all(chunk.iter().map(|(key, values)| self.add(key.clone(), values))).await?;
        }
        Ok(())
    }

    async fn partition(&self, pk: String) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut pages = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            items.extend(page.map_err(shared::dynamo::error).map_err(unavailable)?.items().iter().cloned());
        }
        Ok(items)
    }
}

impl AiStore for DynamoStore {
    async fn versioned_profile(&self, user_id: &str) -> Result<(Profile, u64), StoreError> {
        let found = self.table.get_versioned(key(format!("USER#{user_id}"), "PROFILE")).await.map_err(unavailable)?;
        Ok(found.unwrap_or_else(|| (Profile { user_id: user_id.into(), ..Profile::default() }, 0)))
    }
    async fn save_profile(&self, profile: &Profile, version: u64) -> Result<bool, StoreError> {
        let key = key(format!("USER#{}", profile.user_id), "PROFILE");
        self.table.put_versioned(key, profile, version).await.map_err(unavailable)
    }
    async fn order(&self, order_id: &str) -> Result<Option<OrderSeen>, StoreError> {
        self.get(key(format!("ORDER#{order_id}"), "ORDER")).await
    }
    async fn save_order(&self, order: &OrderSeen) -> Result<(), StoreError> {
        self.put(key(format!("ORDER#{}", order.order_id), "ORDER"), order).await
    }
    async fn products(&self, ids: &[String]) -> Result<HashMap<String, ProductInfo>, StoreError> {
        let keys = ids.iter().map(|id| key(format!("PRODUCT#{id}"), "INFO")).collect();
        let items = self.table.get_many(keys).await.map_err(unavailable)?;
        items
            .into_iter()
            .map(|item| {
                let product: ProductInfo = serde_dynamo::from_item(item).map_err(unavailable)?;
                Ok((product.product_id.clone(), product))
            })
            .collect()
    }
    async fn save_product(&self, product: &ProductInfo) -> Result<(), StoreError> {
        self.put(key(format!("PRODUCT#{}", product.product_id), "INFO"), product).await
    }
    async fn add_sale(&self, order: &OrderSeen) -> Result<(), StoreError> {
        let SaleParts(units, pairs, sellers) = sale_parts(order);
        let mut counters: Vec<(Item, Vec<(&'static str, u64)>)> = Vec::new();
        counters.extend(units.into_iter().map(|(product, n)| (key("POPULAR", product), vec![("units", n)])));
        counters.extend(pairs.into_iter().map(|(a, b)| (key(format!("TOGETHER#{a}"), b), vec![("orders", 1)])));
        counters.extend(order.items.iter().map(|item| {
            let key = key(format!("SELLER#{}", item.seller_id), format!("UNITS#{}", item.product_id));
            (key, vec![("units", u64::from(item.quantity))])
        }));
        self.add_all(counters).await?;
        // Summaries after the per-product units: a summary that shows the sale has its top products.
        let summaries = sellers.into_iter().map(|(seller, (n, revenue))| {
            (
                key(format!("SELLER#{seller}"), "SUMMARY"),
                vec![("orders", 1), ("units_sold", n), ("revenue_cents", revenue)],
            )
        });
        self.add_all(summaries.collect()).await
    }
    async fn popular(&self, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        let mut all: Vec<(String, u64)> =
            self.partition("POPULAR".into()).await?.iter().map(|i| (sort_key(i), number(i, "units"))).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(limit);
        Ok(all)
    }
    async fn together(&self, products: &[String]) -> Result<Vec<(String, String, u64)>, StoreError> {
        let partitions = products.iter().map(|product| async move {
            let items = self.partition(format!("TOGETHER#{product}")).await?;
            Ok::<_, StoreError>(
                items.iter().map(|i| (product.clone(), sort_key(i), number(i, "orders"))).collect::<Vec<_>>(),
            )
        });
        Ok(futures_util::future::try_join_all(partitions).await?.into_iter().flatten().collect())
    }
    async fn seller(&self, seller_id: &str) -> Result<SellerSummary, StoreError> {
        let mut summary = SellerSummary::default();
        for item in self.partition(format!("SELLER#{seller_id}")).await? {
            let sk = sort_key(&item);
            match sk.strip_prefix("UNITS#") {
                Some(product) => {
                    summary.units.insert(product.to_owned(), number(&item, "units"));
                }
                None => {
                    summary.orders = number(&item, "orders");
                    summary.units_sold = number(&item, "units_sold");
                    summary.revenue_cents = number(&item, "revenue_cents");
                }
            }
        }
        Ok(summary)
    }
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
