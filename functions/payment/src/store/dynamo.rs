//! Payments in the Payment table (pk/sk):
//! - `PAYMENT#{id}` / `PAYMENT`: the payment and its gateway reference;
//! - `PAYKEY#{key}` / `PAYKEY`: what the caller's idempotency key led to. Claimed with a
//!   conditional put before the gateway is called, with the payment id the gateway is asked
//!   under, so one key authorizes at most once;
//! - `OUTBOX` / `{event id}`: events written with the change they report.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use shared::Envelope;
use shared::dynamo::{DynamoError, Item, Table, item, key};
use shared::outbox::DynamoOutbox;

use super::{KeyOutcome, PaymentStore, StoreError, StoredPayment};
use crate::domain::PaymentStatus;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    table: Table,
    outbox: DynamoOutbox,
}

fn payment_key(id: &str) -> Item {
    key(format!("PAYMENT#{id}"), "PAYMENT")
}

fn idempotency_key(k: &str) -> Item {
    key(format!("PAYKEY#{k}"), "PAYKEY")
}

impl DynamoStore {
    pub fn new(table: Table) -> Self {
        Self { outbox: DynamoOutbox::new(table.client.clone(), table.name.clone()), table }
    }

    /// The Payment table named by `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(Table::from_env(sdk)?))
    }

    /// `from` -> `to`, conditionally; `reported_under` is the claim's (none: a change that
    /// claims nothing, or reports nothing, ends any claim's).
    fn status_change(
        &self,
        payment_id: &str,
        from: PaymentStatus,
        to: PaymentStatus,
        reported_under: Option<&str>,
    ) -> Result<Update, StoreError> {
        let now = AttributeValue::S(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
        // A status as the item holds it: serialised the way the item was.
        let status = |status: PaymentStatus| -> Result<AttributeValue, DynamoError> {
            serde_dynamo::to_attribute_value(status).map_err(shared::dynamo::error)
        };
        let update = match reported_under {
            Some(correlation_id) => Update::builder()
                .update_expression("SET #s = :to, updated_at = :now, reported_under = :reported")
                .expression_attribute_values(":reported", AttributeValue::S(correlation_id.to_owned())),
            None => Update::builder().update_expression("SET #s = :to, updated_at = :now REMOVE reported_under"),
        };
        let update = update
            .table_name(&self.table.name)
            .set_key(Some(payment_key(payment_id)))
            .condition_expression("#s = :from")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":to", status(to)?)
            .expression_attribute_values(":from", status(from)?)
            .expression_attribute_values(":now", now)
            .build()
            .map_err(shared::dynamo::error)?;
        Ok(update)
    }
}

impl PaymentStore for DynamoStore {
    type Outbox = DynamoOutbox;

    fn outbox(&self) -> &DynamoOutbox {
        &self.outbox
    }

    async fn claim_key(&self, k: &str, claim: &KeyOutcome) -> Result<Option<KeyOutcome>, StoreError> {
        if self.table.put_new(idempotency_key(k), claim).await? {
            return Ok(None);
        }
        // Claimed before: what it led to (a claim is only ever replaced by its outcome, or
        // dropped when the token was invalid, which is how it can be gone already).
        self.table
            .get(idempotency_key(k))
            .await?
            .map(Some)
            .ok_or_else(|| StoreError::Contended(format!("the key {k} was claimed but cannot be read yet")))
    }

    async fn settle_key(
        &self,
        k: &str,
        claimed: &KeyOutcome,
        outcome: &KeyOutcome,
        payment: Option<&StoredPayment>,
    ) -> Result<bool, StoreError> {
        let KeyOutcome::Pending { payment_id, since, .. } = claimed else {
            return Ok(false);
        };
        let key_record = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item(idempotency_key(k), outcome)?))
            .condition_expression("outcome = :pending AND payment_id = :payment AND since = :since")
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .expression_attribute_values(":payment", AttributeValue::S(payment_id.clone()))
            .expression_attribute_values(":since", AttributeValue::N(since.to_string()))
            .build()
            .map_err(shared::dynamo::error)?;
        let mut items = vec![TransactWriteItem::builder().put(key_record).build()];
        if let Some(payment) = payment {
            let record = Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(item(payment_key(&payment.payment.payment_id), payment)?))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(shared::dynamo::error)?;
            items.push(TransactWriteItem::builder().put(record).build());
        }
        Ok(self.table.transact(items).await?)
    }

    async fn drop_key(&self, k: &str, claimed: &KeyOutcome) -> Result<(), StoreError> {
        let KeyOutcome::Pending { payment_id, .. } = claimed else { return Ok(()) };
        let deleted = self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .set_key(Some(idempotency_key(k)))
            .condition_expression("outcome = :pending AND payment_id = :payment")
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .expression_attribute_values(":payment", AttributeValue::S(payment_id.clone()))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(shared::dynamo::error(e).into()),
        }
    }

    async fn get(&self, payment_id: &str) -> Result<Option<StoredPayment>, StoreError> {
        Ok(self.table.get(payment_key(payment_id)).await?)
    }

    async fn claim(
        &self,
        payment_id: &str,
        from: PaymentStatus,
        to: PaymentStatus,
        reported_under: Option<&str>,
    ) -> Result<bool, StoreError> {
        let change = self.status_change(payment_id, from, to, reported_under)?;
        Ok(self.table.transact(vec![TransactWriteItem::builder().update(change).build()]).await?)
    }

    async fn transition(&self, payment_id: &str, from: PaymentStatus, to: PaymentStatus) -> Result<bool, StoreError> {
        self.claim(payment_id, from, to, None).await
    }

    async fn transition_with(
        &self,
        payment_id: &str,
        from: PaymentStatus,
        to: PaymentStatus,
        event: &Envelope,
    ) -> Result<bool, StoreError> {
        let change = TransactWriteItem::builder().update(self.status_change(payment_id, from, to, None)?).build();
        Ok(self.table.transact(vec![change, self.outbox.entry(event).map_err(shared::dynamo::error)?]).await?)
    }
}
