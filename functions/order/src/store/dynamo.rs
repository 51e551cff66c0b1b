//! Orders in the Order table (pk/sk):
//! - `ORDER#{id}` / `ORDER`: the order (with its history), indexed `ByUser` on
//!   `gsi1pk = USER#{user_id}`, `gsi1sk = {order_id}` (ULIDs: newest last);
//! - `ORDER#{id}` / `ABANDONED`: the tombstone of an id its checkout gave up; creating an
//!   order is conditioned on its absence, and abandoning on the order's;
//! - `OUTBOX` / `{event id}`: events written with the change they report.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::dynamo::{Item, PageError, Partition, Table, item, key};
use shared::outbox::DynamoOutbox;
use shared::pagination::{Page, PageRequest};

use super::{Abandon, OrderStore, StoreError, StoredOrder};
use crate::domain::{Order, OrderStatus};

#[derive(Debug, Clone)]
pub struct DynamoStore {
    table: Table,
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
    key(format!("ORDER#{id}"), "ORDER")
}

fn tombstone_key(id: &str) -> Item {
    key(format!("ORDER#{id}"), "ABANDONED")
}

impl DynamoStore {
    pub fn new(table: Table) -> Self {
        Self { outbox: DynamoOutbox::new(table.client.clone(), table.name.clone()), table }
    }

    /// The Order table named by `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(Table::from_env(sdk)?))
    }

    fn put(
        &self,
        order: &StoredOrder,
        condition: &str,
        expected: Option<OrderStatus>,
    ) -> Result<TransactWriteItem, StoreError> {
        let indexed = OrderItem {
            stored: order.clone(),
            gsi1pk: format!("USER#{}", order.order.user_id),
            gsi1sk: order.order.order_id.clone(),
        };
        let item = item(order_key(&order.order.order_id), &indexed)?;
        let mut put = Put::builder().table_name(&self.table.name).set_item(Some(item)).condition_expression(condition);
        if let Some(expected) = expected {
            // The status as the item holds it: serialised the way the item was.
            let status: AttributeValue = serde_dynamo::to_attribute_value(expected).map_err(shared::dynamo::error)?;
            put = put.expression_attribute_names("#s", "status").expression_attribute_values(":expected", status);
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(shared::dynamo::error)?).build())
    }
}

impl DynamoStore {
    /// A transaction's condition that no item is at `key`.
    fn absent(&self, key: Item) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table.name)
            .set_key(Some(key))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(shared::dynamo::error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}

impl OrderStore for DynamoStore {
    type Outbox = DynamoOutbox;

    fn outbox(&self) -> &DynamoOutbox {
        &self.outbox
    }

    async fn create(&self, order: &StoredOrder, event: &Envelope) -> Result<Option<StoredOrder>, StoreError> {
        let id = &order.order.order_id;
        let items = vec![
            self.absent(tombstone_key(id))?,
            self.put(order, "attribute_not_exists(pk)", None)?,
            self.outbox.entry(event).map_err(shared::dynamo::error)?,
        ];
        if self.table.transact(items).await? {
            return Ok(None);
        }
        // The order exists (a retry of the same checkout): answer with it. Else the id's
        // checkout gave it up.
        match self.get(id).await? {
            Some(existing) => Ok(Some(existing)),
            None if self.table.get::<serde_json::Value>(tombstone_key(id)).await?.is_some() => {
                Err(StoreError::Abandoned)
            }
            None => Err(StoreError::Conflict),
        }
    }

    async fn abandon(&self, order_id: &str) -> Result<Abandon, StoreError> {
        let tombstone = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(tombstone_key(order_id)))
            .build()
            .map_err(shared::dynamo::error)?;
        let items = vec![self.absent(order_key(order_id))?, TransactWriteItem::builder().put(tombstone).build()];
        if self.table.transact(items).await? {
            return Ok(Abandon::Abandoned);
        }
        self.get(order_id).await?.map(|o| Abandon::Exists(Box::new(o))).ok_or(StoreError::Conflict)
    }

    async fn get(&self, order_id: &str) -> Result<Option<StoredOrder>, StoreError> {
        Ok(self.table.get::<OrderItem>(order_key(order_id)).await?.map(|i| i.stored))
    }

    async fn list(&self, user_id: &str, page: &PageRequest) -> Result<Page<Order>, StoreError> {
        let partition = Partition {
            index: Some("ByUser"),
            attribute: "gsi1pk",
            value: format!("USER#{user_id}"),
            sort_attribute: "gsi1sk",
            sort_prefix: None,
        };
        let found = self.table.page::<OrderItem>(partition, page).await.map_err(|e| match e {
            PageError::ForeignCursor => StoreError::BadCursor,
            PageError::Dynamo(e) => StoreError::Unavailable(e),
        })?;
        Ok(found.map(|i| i.stored.order))
    }

    async fn replace(&self, order: &StoredOrder, expected: OrderStatus, event: &Envelope) -> Result<(), StoreError> {
        let items = vec![
            self.put(order, "#s = :expected", Some(expected))?,
            self.outbox.entry(event).map_err(shared::dynamo::error)?,
        ];
        if self.table.transact(items).await? { Ok(()) } else { Err(StoreError::Conflict) }
    }
}
