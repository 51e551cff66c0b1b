//! Carts in the Cart table (pk/sk):
//! - `CART#{user_id}` / `CART`: the lines and a `version` (the condition of every write);
//! - `CHECKOUT#{user_id}#{key}` / `CHECKOUT`: one checkout's record, so the same
//!   `Idempotency-Key` gets the same answer; kept a day (TTL `expires_at`). While it may
//!   hold an authorization or a reservation (running, being undone) it is in the sparse
//!   index `OpenCheckouts` (`open = "OPEN"`, sorted by `open_until`, its lease's end in
//!   epoch milliseconds), where the reconciler finds the ones left behind.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use shared::dynamo::{Item, Table, error, item, key};

use super::{CartStore, StoreError};
use crate::domain::{Cart, CartLine, Checkout};

/// How long a checkout's answer is remembered.
const CHECKOUT_TTL_SECONDS: i64 = 24 * 3600;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    table: Table,
}

#[derive(Serialize, Deserialize)]
struct CartItem {
    items: Vec<CartLine>,
    version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checked_out: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct CheckoutItem {
    /// The record as JSON: its answer is free-form JSON, which DynamoDB maps poorly.
    record: String,
    /// A fingerprint of the record, the condition of replacing it.
    fingerprint: String,
    expires_at: i64,
    /// `OPEN` while the checkout is open (the index's partition), else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open_until: Option<i64>,
}

/// The partition of `OpenCheckouts`: open checkouts are few (those in flight).
const OPEN: &str = "OPEN";

fn cart_key(user_id: &str) -> Item {
    key(format!("CART#{user_id}"), "CART")
}

fn checkout_key(user_id: &str, k: &str) -> Item {
    key(format!("CHECKOUT#{user_id}#{k}"), "CHECKOUT")
}

fn fingerprint(checkout: &Checkout) -> String {
    format!(
        "{:?}:{}:{}:{}",
        checkout.status,
        checkout.attempt,
        checkout.order_id,
        checkout.lease_until.timestamp_micros()
    )
}

impl DynamoStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    /// The Cart table named by `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(Table::from_env(sdk)?))
    }

    fn checkout_item(&self, checkout: &Checkout) -> Result<Item, StoreError> {
        // The record's JSON is part of the item, so failing to write it is the item's error.
        let record = serde_json::to_string(checkout).map_err(error)?;
        let expires_at = chrono::Utc::now().timestamp() + CHECKOUT_TTL_SECONDS;
        let open = checkout.is_open();
        let stored = CheckoutItem {
            record,
            fingerprint: fingerprint(checkout),
            expires_at,
            open: open.then(|| OPEN.to_owned()),
            open_until: open.then(|| checkout.lease_until.timestamp_millis()),
        };
        Ok(item(checkout_key(&checkout.user_id, &checkout.key), &stored)?)
    }
}

impl CartStore for DynamoStore {
    async fn cart(&self, user_id: &str) -> Result<(Cart, u64), StoreError> {
        Ok(match self.table.get::<CartItem>(cart_key(user_id)).await? {
            Some(stored) => (
                Cart { user_id: user_id.to_owned(), items: stored.items, checked_out: stored.checked_out },
                stored.version,
            ),
            None => (Cart::empty(user_id), 0),
        })
    }

    async fn save_cart(&self, cart: &Cart, version: u64) -> Result<bool, StoreError> {
        let stored =
            CartItem { items: cart.items.clone(), version: version + 1, checked_out: cart.checked_out.clone() };
        let written = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item(cart_key(&cart.user_id), &stored)?))
            .condition_expression("attribute_not_exists(pk) OR version = :version")
            .expression_attribute_values(":version", AttributeValue::N(version.to_string()))
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(error(e).into()),
        }
    }

    async fn checkout(&self, user_id: &str, k: &str) -> Result<Option<Checkout>, StoreError> {
        let found: Option<CheckoutItem> = self.table.get(checkout_key(user_id, k)).await?;
        Ok(found.map(|stored| serde_json::from_str(&stored.record)).transpose().map_err(error)?)
    }

    async fn save_checkout(&self, next: &Checkout, previous: Option<&Checkout>) -> Result<bool, StoreError> {
        let mut put =
            self.table.client.put_item().table_name(&self.table.name).set_item(Some(self.checkout_item(next)?));
        put = match previous {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(previous) => put
                .condition_expression("fingerprint = :previous")
                .expression_attribute_values(":previous", AttributeValue::S(fingerprint(previous))),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(error(e).into()),
        }
    }

    async fn stale_checkouts(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: i32,
    ) -> Result<Vec<Checkout>, StoreError> {
        let found = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .index_name("OpenCheckouts")
            .key_condition_expression("#open = :open AND open_until < :before")
            .expression_attribute_names("#open", "open")
            .expression_attribute_values(":open", AttributeValue::S(OPEN.into()))
            .expression_attribute_values(":before", AttributeValue::N(before.timestamp_millis().to_string()))
            .limit(limit)
            .send()
            .await
            .map_err(error)?;
        // The index is eventually consistent: each record is read again, consistently.
        let mut stale = Vec::new();
        for item in found.items() {
            let listed: CheckoutItem = serde_dynamo::from_item(item.clone()).map_err(error)?;
            let listed: Checkout = serde_json::from_str(&listed.record).map_err(error)?;
            if let Some(current) = self.checkout(&listed.user_id, &listed.key).await?
                && current.is_open()
                && current.lease_until < before
            {
                stale.push(current);
            }
        }
        Ok(stale)
    }

    async fn record_purchase(
        &self,
        user_id: &str,
        order_id: &str,
        total_cents: u64,
        completed_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let purchase = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("CART#{user_id}"))),
            ("sk".to_owned(), AttributeValue::S(format!("PURCHASE#{order_id}"))),
            ("order_id".to_owned(), AttributeValue::S(order_id.to_owned())),
            ("total_cents".to_owned(), AttributeValue::N(total_cents.to_string())),
            ("completed_at".to_owned(), AttributeValue::S(completed_at.to_rfc3339())),
        ]);
        // Keyed by the order, every value from the event: recording it again changes nothing.
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(purchase))
            .send()
            .await
            .map_err(error)?;
        Ok(())
    }
}
