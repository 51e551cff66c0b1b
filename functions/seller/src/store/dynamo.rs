//! The catalogue in the Seller table (pk/sk):
//! - `PRODUCT#{id}` / `PRODUCT`: a product, with `version` (bumped by every write, the
//!   condition of updates) and two index keys: `gsi1pk = CATEGORY#{category}` (index
//!   `ByCategory`) and `gsi2pk = PRODUCTS` (index `Newest`), both sorted by `{created_at}#{id}`;
//! - `RESERVATION#{id}` / `RESERVATION`: units taken for one order, and their status.
//!
//! Stock only moves in conditional writes: a reservation takes every line in one
//! transaction (`stock >= quantity` on each) or nothing; a release puts units back in one
//! transaction conditioned on the reservation still being held.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shared::contracts::{Product, ReservationLine};
use shared::dynamo::{Cancelled, Item, PageError, Partition, Table, TransactFailure, item, key, transact_failure};
use shared::pagination::{Page, PageRequest};

use super::{CatalogueStore, StoreError};
use crate::domain::{ProductChanges, Reservation, ReservationStatus, Shortage};

#[derive(Debug, Clone)]
pub struct DynamoStore {
    table: Table,
}

/// A product as stored: the product, its version and index keys.
#[derive(Serialize, Deserialize)]
struct ProductItem {
    #[serde(flatten)]
    product: Product,
    version: u64,
    gsi1pk: String,
    gsi1sk: String,
    gsi2pk: String,
    gsi2sk: String,
}

impl ProductItem {
    fn new(product: Product, version: u64) -> Self {
        let sort = format!(
            "{}#{}",
            product.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            product.product_id
        );
        Self {
            gsi1pk: format!("CATEGORY#{}", product.category),
            gsi1sk: sort.clone(),
            gsi2pk: "PRODUCTS".into(),
            gsi2sk: sort,
            product,
            version,
        }
    }
}

fn product_key(id: &str) -> Item {
    key(format!("PRODUCT#{id}"), "PRODUCT")
}

fn reservation_key(id: &str) -> Item {
    key(format!("RESERVATION#{id}"), "RESERVATION")
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Conditional writes that lose to a concurrent one, before giving up.
const TRIES: usize = 3;
/// Pauses between the tries of a transaction cancelled by contention (each jittered 50-150 %).
const CONTENTION_PAUSES_MS: [u64; 4] = [10, 25, 50, 100];

fn jitter(ms: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    ms / 2 + u64::from(nanos) % ms.max(1)
}

impl DynamoStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    /// The Seller table named by `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(Table::from_env(sdk)?))
    }

    async fn product_item(&self, id: &str) -> Result<Option<ProductItem>, StoreError> {
        Ok(self.table.get(product_key(id)).await?)
    }

    fn stock_change(&self, line: &ReservationLine, take: bool) -> Result<TransactWriteItem, StoreError> {
        let (expression, condition) = if take {
            ("SET stock = stock - :q, version = version + :one", "attribute_exists(pk) AND stock >= :q")
        } else {
            ("SET stock = stock + :q, version = version + :one", "attribute_exists(pk)")
        };
        let update = Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(product_key(&line.product_id)))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_values(":q", number(line.quantity))
            .expression_attribute_values(":one", number(1))
            .build()
            .map_err(shared::dynamo::error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// What is left of each line that could not be taken.
    async fn shortages(&self, lines: &[ReservationLine]) -> Result<Vec<Shortage>, StoreError> {
        let ids: Vec<String> = lines.iter().map(|l| l.product_id.clone()).collect();
        let stock: HashMap<String, u32> =
            self.lookup(&ids).await?.into_iter().map(|p| (p.product_id, p.stock)).collect();
        Ok(lines
            .iter()
            .filter_map(|line| {
                let available = stock.get(&line.product_id).copied().unwrap_or(0);
                (available < line.quantity).then(|| Shortage {
                    product_id: line.product_id.clone(),
                    requested: line.quantity,
                    available,
                })
            })
            .collect())
    }
}

impl CatalogueStore for DynamoStore {
    async fn create(&self, product: &Product) -> Result<(), StoreError> {
        let item = item(product_key(&product.product_id), &ProductItem::new(product.clone(), 1))?;
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(shared::dynamo::error)?;
        Ok(())
    }

    async fn get(&self, product_id: &str) -> Result<Option<Product>, StoreError> {
        Ok(self.product_item(product_id).await?.map(|item| item.product))
    }

    async fn update(&self, product_id: &str, seller_id: &str, changes: &ProductChanges) -> Result<Product, StoreError> {
        for _ in 0..TRIES {
            let current = self
                .product_item(product_id)
                .await?
                .filter(|i| i.product.seller_id == seller_id)
                .ok_or(StoreError::NotFound)?;
            let changed = changes.apply(&current.product, Utc::now())?;
            let item = item(product_key(product_id), &ProductItem::new(changed.clone(), current.version + 1))?;
            let written = self
                .table
                .client
                .put_item()
                .table_name(&self.table.name)
                .set_item(Some(item))
                .condition_expression("version = :version")
                .expression_attribute_values(":version", number(current.version))
                .send()
                .await;
            match written {
                Ok(_) => return Ok(changed),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => continue,
                Err(e) => return Err(shared::dynamo::error(e).into()),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn list(&self, category: Option<&str>, page: &PageRequest) -> Result<Page<Product>, StoreError> {
        let partition = match category {
            Some(category) => Partition {
                index: Some("ByCategory"),
                attribute: "gsi1pk",
                value: format!("CATEGORY#{category}"),
                sort_attribute: "gsi1sk",
                sort_prefix: None,
            },
            None => Partition {
                index: Some("Newest"),
                attribute: "gsi2pk",
                value: "PRODUCTS".to_owned(),
                sort_attribute: "gsi2sk",
                sort_prefix: None,
            },
        };
        let found = self.table.page::<ProductItem>(partition, page).await.map_err(|e| match e {
            PageError::ForeignCursor => StoreError::BadCursor,
            PageError::Dynamo(e) => StoreError::Unavailable(e),
        })?;
        Ok(found.map(|i| i.product))
    }

    async fn lookup(&self, ids: &[String]) -> Result<Vec<Product>, StoreError> {
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        let keys = unique.into_iter().map(|id| product_key(id)).collect();
        let items = self.table.get_many(keys).await?;
        items
            .into_iter()
            .map(|item| Ok(serde_dynamo::from_item::<_, ProductItem>(item).map_err(shared::dynamo::error)?.product))
            .collect()
    }

    async fn reserve(&self, reservation_id: &str, lines: &[ReservationLine]) -> Result<Reservation, StoreError> {
        let reservation = Reservation {
            reservation_id: reservation_id.to_owned(),
            status: ReservationStatus::Held,
            items: lines.to_vec(),
            created_at: Utc::now(),
        };
        let record = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item(reservation_key(reservation_id), &reservation)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(shared::dynamo::error)?;
        let mut items = lines.iter().map(|line| self.stock_change(line, true)).collect::<Result<Vec<_>, _>>()?;
        items.push(TransactWriteItem::builder().put(record).build());
        // A hot product's checkouts contend in DynamoDB (TransactionConflict): that is not a
        // shortage, so the transaction is tried again after a jittered pause.
        let mut pauses = CONTENTION_PAUSES_MS.into_iter();
        loop {
            let written = self.table.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let Err(error) = written else { return Ok(reservation) };
            let codes = match transact_failure(&error) {
                TransactFailure::Cancelled { why: Cancelled::ConditionFailed, codes } => codes,
                failure if failure.is_transient() => {
                    // Contended after every pause: the last contention is the error.
                    let Some(pause) = pauses.next() else { return Err(shared::dynamo::error(error).into()) };
                    tracing::warn!(?failure, reservation_id, "reservation contended; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(jitter(pause))).await;
                    continue;
                }
                _ => return Err(shared::dynamo::error(error).into()),
            };
            if codes.last().map(String::as_str) == Some("ConditionalCheckFailed") {
                // Made before: the same answer again, if it still holds.
                let existing: Reservation =
                    self.table.get(reservation_key(reservation_id)).await?.ok_or(StoreError::Conflict)?;
                return if existing.status == ReservationStatus::Released {
                    Err(StoreError::Released)
                } else {
                    Ok(existing)
                };
            }
            let failed: Vec<ReservationLine> = lines
                .iter()
                .zip(&codes)
                .filter(|(_, code)| *code == "ConditionalCheckFailed")
                .map(|(l, _)| l.clone())
                .collect();
            let shortages = self.shortages(&failed).await?;
            return Err(StoreError::Shortages(if shortages.is_empty() {
                self.shortages(lines).await?
            } else {
                shortages
            }));
        }
    }

    async fn release(&self, reservation_id: &str, committed: bool) -> Result<Option<Reservation>, StoreError> {
        for _ in 0..TRIES {
            let Some(mut reservation) = self.table.get::<Reservation>(reservation_key(reservation_id)).await? else {
                // Not reserved (yet): a tombstone, so that a late reserve takes nothing.
                let tombstone = Reservation::tombstone(reservation_id, Utc::now());
                if self.table.put_new(reservation_key(reservation_id), &tombstone).await? {
                    return Ok(Some(tombstone));
                }
                continue; // reserved meanwhile: release that
            };
            // Held units go back, and so do committed ones (an order cancelled after it was paid).
            let from = match reservation.status {
                ReservationStatus::Held => "held",
                ReservationStatus::Committed if committed => "committed",
                _ => return Ok(Some(reservation)),
            };
            let status = Update::builder()
                .table_name(&self.table.name)
                .set_key(Some(reservation_key(reservation_id)))
                .update_expression("SET #s = :released")
                .condition_expression("#s = :from")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":released", AttributeValue::S("released".into()))
                .expression_attribute_values(":from", AttributeValue::S(from.into()))
                .build()
                .map_err(shared::dynamo::error)?;
            let mut items = vec![TransactWriteItem::builder().update(status).build()];
            for line in &reservation.items {
                items.push(self.stock_change(line, false)?);
            }
            match self.table.client.transact_write_items().set_transact_items(Some(items)).send().await {
                Ok(_) => {
                    reservation.status = ReservationStatus::Released;
                    return Ok(Some(reservation));
                }
                // Released (or committed) concurrently, or contended: read it again.
                Err(e)
                    if matches!(
                        transact_failure(&e),
                        TransactFailure::Cancelled { why: Cancelled::ConditionFailed, .. }
                    ) || transact_failure(&e).is_transient() =>
                {
                    continue;
                }
                Err(e) => return Err(shared::dynamo::error(e).into()),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn commit(&self, reservation_id: &str) -> Result<Option<Reservation>, StoreError> {
        let updated = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(reservation_key(reservation_id)))
            .update_expression("SET #s = :committed")
            .condition_expression("#s = :held")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":committed", AttributeValue::S("committed".into()))
            .expression_attribute_values(":held", AttributeValue::S("held".into()))
            .send()
            .await;
        match updated {
            // Committed now, or before, or released: the reservation as it is.
            Ok(_) => Ok(self.table.get(reservation_key(reservation_id)).await?),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(self.table.get(reservation_key(reservation_id)).await?)
            }
            Err(e) => Err(shared::dynamo::error(e).into()),
        }
    }
}
