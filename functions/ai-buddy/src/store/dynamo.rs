//! What AI Buddy keeps, in its own table (pk/sk): `USER#{id}`/`PROFILE`, `ORDER#{id}`/`ORDER`,
//! `PRODUCT#{id}`/`INFO`, counters `POPULAR`/`{product}`, `TOGETHER#{a}`/`{b}`,
//! `SELLER#{id}`/`SUMMARY` and `SELLER#{id}`/`UNITS#{product}`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use shared::dynamo::{Item, Table, error, key};

use super::{AiStore, SaleParts, SellerSummary, StoreError, sale_parts};
use crate::domain::{OrderSeen, ProductInfo, Profile};

/// Counter updates in flight at once, per invocation.
const CONCURRENT_WRITES: usize = 16;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    table: Table,
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
        update.send().await.map_err(error)?;
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
            items.extend(page.map_err(error)?.items().iter().cloned());
        }
        Ok(items)
    }
}

impl AiStore for DynamoStore {
    async fn versioned_profile(&self, user_id: &str) -> Result<(Profile, u64), StoreError> {
        let found = self.table.get_versioned(key(format!("USER#{user_id}"), "PROFILE")).await?;
        Ok(found.unwrap_or_else(|| (Profile { user_id: user_id.into(), ..Profile::default() }, 0)))
    }
    async fn save_profile(&self, profile: &Profile, version: u64) -> Result<bool, StoreError> {
        let key = key(format!("USER#{}", profile.user_id), "PROFILE");
        Ok(self.table.put_versioned(key, profile, version).await?)
    }
    async fn order(&self, order_id: &str) -> Result<Option<OrderSeen>, StoreError> {
        Ok(self.table.get(key(format!("ORDER#{order_id}"), "ORDER")).await?)
    }
    async fn save_order(&self, order: &OrderSeen) -> Result<(), StoreError> {
        Ok(self.table.put(key(format!("ORDER#{}", order.order_id), "ORDER"), order).await?)
    }
    async fn products(&self, ids: &[String]) -> Result<HashMap<String, ProductInfo>, StoreError> {
        let keys = ids.iter().map(|id| key(format!("PRODUCT#{id}"), "INFO")).collect();
        let items = self.table.get_many(keys).await?;
        items
            .into_iter()
            .map(|item| {
                let product: ProductInfo = serde_dynamo::from_item(item).map_err(error)?;
                Ok((product.product_id.clone(), product))
            })
            .collect()
    }
    async fn save_product(&self, product: &ProductInfo) -> Result<(), StoreError> {
        Ok(self.table.put(key(format!("PRODUCT#{}", product.product_id), "INFO"), product).await?)
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
