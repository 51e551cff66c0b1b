//! Payments in the Payment table (pk/sk):
//! - `PAYMENT#{id}` / `PAYMENT`: the payment and its gateway reference;
//! - `PAYKEY#{key}` / `PAYKEY`: what the caller's idempotency key led to. Claimed with a
//!   conditional put before the gateway is called, so one key authorizes at most once.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use shared::Envelope;
use shared::outbox::{DynamoOutbox, Outbox, OutboxError};

use super::{KeyOutcome, PaymentStore, StoreError, StoredPayment};
use crate::domain::PaymentStatus;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    outbox: DynamoOutbox,
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk)), ("sk".to_owned(), AttributeValue::S(sk.to_owned()))])
}

fn payment_key(id: &str) -> Item {
    key(format!("PAYMENT#{id}"), "PAYMENT")
}

fn idempotency_key(k: &str) -> Item {
    key(format!("PAYKEY#{k}"), "PAYKEY")
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}

fn to_item(key: Item, value: &impl serde::Serialize) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(unavailable)?;
    item.extend(key);
    Ok(item)
}

fn status(value: PaymentStatus) -> AttributeValue {
    AttributeValue::S(serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self { outbox: DynamoOutbox::new(client.clone(), table.clone()), client, table }
    }

    /// The Payment table named by `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(Client::new(sdk), shared::config::required("TABLE_NAME")?))
    }

    async fn get_item<T: for<'de> serde::Deserialize<'de>>(&self, key: Item) -> Result<Option<T>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        found.item.map(|item| serde_dynamo::from_item(item).map_err(unavailable)).transpose()
    }
}

impl PaymentStore for DynamoStore {
    async fn claim_key(&self, k: &str) -> Result<Option<KeyOutcome>, StoreError> {
        let now = chrono::Utc::now().timestamp();
        let item = to_item(idempotency_key(k), &KeyOutcome::Pending { since: now })?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR (outcome = :pending AND since < :stale)")
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .expression_attribute_values(":stale", AttributeValue::N((now - super::PENDING_FOR).to_string()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(None),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(Some(self.get_item(idempotency_key(k)).await?.unwrap_or(KeyOutcome::Pending { since: now })))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn settle_key(
        &self,
        k: &str,
        outcome: &KeyOutcome,
        payment: Option<&StoredPayment>,
    ) -> Result<(), StoreError> {
        let put = |item: Item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(unavailable)
        };
        let mut items = vec![put(to_item(idempotency_key(k), outcome)?)?];
        if let Some(payment) = payment {
            items.push(put(to_item(payment_key(&payment.payment.payment_id), payment)?)?);
        }
        self.client.transact_write_items().set_transact_items(Some(items)).send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn drop_key(&self, k: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_key(k)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, payment_id: &str) -> Result<Option<StoredPayment>, StoreError> {
        self.get_item(payment_key(payment_id)).await
    }

    async fn transition(&self, payment_id: &str, from: PaymentStatus, to: PaymentStatus) -> Result<bool, StoreError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(payment_key(payment_id)))
            .update_expression("SET #s = :to, updated_at = :now")
            .condition_expression("#s = :from")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":to", status(to))
            .expression_attribute_values(":from", status(from))
            .expression_attribute_values(
                ":now",
                AttributeValue::S(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
            )
            .send()
            .await;
        match updated {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn transition_with(
        &self,
        payment_id: &str,
        from: PaymentStatus,
        to: PaymentStatus,
        event: &Envelope,
    ) -> Result<bool, StoreError> {
        let now = AttributeValue::S(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(payment_key(payment_id)))
            .update_expression("SET #s = :to, updated_at = :now")
            .condition_expression("#s = :from")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":to", status(to))
            .expression_attribute_values(":from", status(from))
            .expression_attribute_values(":now", now)
            .build()
            .map_err(unavailable)?;
        let items =
            vec![TransactWriteItem::builder().update(update).build(), self.outbox.entry(event).map_err(unavailable)?];
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl Outbox for DynamoStore {
    async fn pending(&self, limit: i32) -> Result<Vec<Envelope>, OutboxError> {
        self.outbox.pending(limit).await
    }

    async fn published(&self, event_id: &str) -> Result<(), OutboxError> {
        self.outbox.published(event_id).await
    }
}
