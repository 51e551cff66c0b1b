//! Orders in the Order table (pk/sk):
//! - `ORDER#{id}` / `ORDER`: the order (with its history), indexed `ByUser` on
//!   `gsi1pk = USER#{user_id}`, `gsi1sk = {order_id}` (ULIDs: newest last);
//! - `ORDER#{id}` / `ABANDONED`: the tombstone of an id its checkout gave up; creating an
//!   order is conditioned on its absence, and abandoning on the order's;
//! - `SHIPMENT#{id}` / `SHIPMENT`: a copy of one shipment of an order (the order item holds
//!   the truth, and every change of either is written to both, in one transaction conditioned
//!   on the order's `version`), indexed `BySeller` on `gsi2pk = SELLER#{seller_id}#{status}`,
//!   `gsi2sk = {shipment_id}` (ULIDs: newest last) only while its order is paid or beyond,
//!   so a seller never lists the shipment of an order not paid or cancelled;
//! - `OUTBOX` / `{event id}`: events written with the change they report.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::dynamo::{Item, PageError, Partition, Table, item, key};
use shared::outbox::DynamoOutbox;
use shared::pagination::{Page, PageRequest};

use super::{Abandon, OrderStore, ShipmentRef, StoreError, StoredOrder};
use crate::domain::{Order, Shipment, ShipmentStatus};

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

#[derive(Serialize, Deserialize)]
struct ShipmentItem {
    #[serde(flatten)]
    shipment: Shipment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
}

fn shipment_key(id: &str) -> Item {
    key(format!("SHIPMENT#{id}"), "SHIPMENT")
}

fn seller_partition(seller_id: &str, status: ShipmentStatus) -> String {
    format!("SELLER#{seller_id}#{}", status.as_str())
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

    /// The writes of `order`: the order item on `condition` (with `version` as `:v`, when
    /// given), and each shipment's item, indexed for its seller once the order is theirs to
    /// fulfil.
    fn writes(
        &self,
        order: &StoredOrder,
        condition: &str,
        version: Option<u64>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let indexed = OrderItem {
            stored: order.clone(),
            gsi1pk: format!("USER#{}", order.order.user_id),
            gsi1sk: order.order.order_id.clone(),
        };
        let order_item = item(order_key(&order.order.order_id), &indexed)?;
        let mut put =
            Put::builder().table_name(&self.table.name).set_item(Some(order_item)).condition_expression(condition);
        if let Some(version) = version {
            put = put.expression_attribute_names("#v", "version").expression_attribute_values(":v", number(version));
        }
        let mut writes = vec![TransactWriteItem::builder().put(put.build().map_err(shared::dynamo::error)?).build()];
        let visible = order.order.status.is_fulfilled_by_sellers();
        for shipment in &order.order.shipments {
            let indexed = ShipmentItem {
                shipment: shipment.clone(),
                gsi2pk: visible.then(|| seller_partition(&shipment.seller_id, shipment.status)),
                gsi2sk: visible.then(|| shipment.shipment_id.clone()),
            };
            let shipment_item = item(shipment_key(&shipment.shipment_id), &indexed)?;
            let put = Put::builder().table_name(&self.table.name).set_item(Some(shipment_item)).build();
            writes.push(TransactWriteItem::builder().put(put.map_err(shared::dynamo::error)?).build());
        }
        Ok(writes)
    }
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
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
        let mut items = vec![self.absent(tombstone_key(id))?];
        items.extend(self.writes(order, "attribute_not_exists(pk)", None)?);
        items.push(self.outbox.entry(event).map_err(shared::dynamo::error)?);
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

    async fn replace(&self, order: &StoredOrder, expected_version: u64, event: &Envelope) -> Result<(), StoreError> {
        // Orders stored before versions were kept have none: they are at version 0.
        let condition = if expected_version == 0 {
            "attribute_exists(pk) AND (attribute_not_exists(#v) OR #v = :v)"
        } else {
            "#v = :v"
        };
        let mut items = self.writes(order, condition, Some(expected_version))?;
        items.push(self.outbox.entry(event).map_err(shared::dynamo::error)?);
        if self.table.transact(items).await? { Ok(()) } else { Err(StoreError::Conflict) }
    }

    async fn shipment(&self, shipment_id: &str) -> Result<Option<ShipmentRef>, StoreError> {
        let found = self.table.get::<ShipmentItem>(shipment_key(shipment_id)).await?;
        Ok(found.map(|i| ShipmentRef { order_id: i.shipment.order_id, seller_id: i.shipment.seller_id }))
    }

    async fn shipments(
        &self,
        seller_id: &str,
        status: ShipmentStatus,
        page: &PageRequest,
    ) -> Result<Page<Shipment>, StoreError> {
        let partition = Partition {
            index: Some("BySeller"),
            attribute: "gsi2pk",
            value: seller_partition(seller_id, status),
            sort_attribute: "gsi2sk",
            sort_prefix: None,
        };
        let found = self.table.page::<ShipmentItem>(partition, page).await.map_err(|e| match e {
            PageError::ForeignCursor => StoreError::BadCursor,
            PageError::Dynamo(e) => StoreError::Unavailable(e),
        })?;
        Ok(found.map(|i| i.shipment))
    }
}
