//! Orders in the Order table (pk/sk):
//! - `ORDER#{id}` / `ORDER`: the order (with its history), indexed `ByUser` on
//!   `gsi1pk = USER#{user_id}`, `gsi1sk = {order_id}` (ULIDs: newest last);
//! - `OUTBOX` / `{event id}`: events written with the change they report.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::outbox::{DynamoOutbox, Outbox, OutboxError};
use shared::pagination::{Page, PageRequest, encode_cursor};

use super::{OrderStore, StoreError, StoredOrder};
use crate::domain::{Order, OrderStatus};

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    outbox: DynamoOutbox,
}

#[derive(Serialize, Deserialize)]
struct OrderItem {
    #[serde(flatten)]
    stored: StoredOrder,
    gsi1pk: String,
    gsi1sk: String,
}

fn order_key(id: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(format!("ORDER#{id}"))),
        ("sk".to_owned(), AttributeValue::S("ORDER".into())),
    ])
}

fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}

fn status(value: OrderStatus) -> AttributeValue {
    AttributeValue::S(serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self { outbox: DynamoOutbox::new(client.clone(), table.clone()), client, table }
    }

    /// The Order table named by `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(Client::new(sdk), shared::config::required("TABLE_NAME")?))
    }

    fn put(
        &self,
        order: &StoredOrder,
        condition: &str,
        expected: Option<OrderStatus>,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = OrderItem {
            stored: order.clone(),
            gsi1pk: format!("USER#{}", order.order.user_id),
            gsi1sk: order.order.order_id.clone(),
        };
        let mut item: Item = serde_dynamo::to_item(&item).map_err(unavailable)?;
        item.extend(order_key(&order.order.order_id));
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item)).condition_expression(condition);
        if let Some(expected) = expected {
            put = put
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":expected", status(expected));
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(unavailable)?).build())
    }

    async fn write(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl OrderStore for DynamoStore {
    async fn create(&self, order: &StoredOrder, event: &Envelope) -> Result<Option<StoredOrder>, StoreError> {
        let items =
            vec![self.put(order, "attribute_not_exists(pk)", None)?, self.outbox.entry(event).map_err(unavailable)?];
        if self.write(items).await? {
            return Ok(None);
        }
        // The order exists (a retry of the same checkout): answer with it.
        self.get(&order.order.order_id).await?.map(Some).ok_or(StoreError::Conflict)
    }

    async fn get(&self, order_id: &str) -> Result<Option<StoredOrder>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(order_key(order_id)))
            .consistent_read(true)
            .send()
            .await;
        let found = found.map_err(unavailable)?;
        found
            .item
            .map(|item| serde_dynamo::from_item::<_, OrderItem>(item).map(|i| i.stored).map_err(unavailable))
            .transpose()
    }

    async fn list(&self, user_id: &str, page: &PageRequest) -> Result<Page<Order>, StoreError> {
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("ByUser")
            .key_condition_expression("gsi1pk = :user")
            .expression_attribute_values(":user", AttributeValue::S(format!("USER#{user_id}")))
            .scan_index_forward(false)
            .limit(page.limit)
            .set_exclusive_start_key(page.start.clone())
            .send()
            .await
            .map_err(unavailable)?;
        let items = found
            .items()
            .iter()
            .map(|item| {
                serde_dynamo::from_item::<_, OrderItem>(item.clone()).map(|i| i.stored.order).map_err(unavailable)
            })
            .collect::<Result<_, _>>()?;
        Ok(Page { items, next_cursor: found.last_evaluated_key().map(encode_cursor) })
    }

    async fn replace(&self, order: &StoredOrder, expected: OrderStatus, event: &Envelope) -> Result<(), StoreError> {
        let items =
            vec![self.put(order, "#s = :expected", Some(expected))?, self.outbox.entry(event).map_err(unavailable)?];
        if self.write(items).await? { Ok(()) } else { Err(StoreError::Conflict) }
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
