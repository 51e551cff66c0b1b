//! The catalogue in the Seller table (pk/sk):
//! - `PRODUCT#{id}` / `PRODUCT`: a product, with `version` (bumped by every write, the
//!   condition of updates) and two index keys: `gsi1pk = CATEGORY#{category}` (index
//!   `ByCategory`) and `gsi2pk = PRODUCTS` (index `Newest`), both sorted by `{created_at}#{id}`.
//!   A deleted product keeps its item (placed orders name it) with `deleted_at`, and both index
//!   keys become `DELETED`, a partition no list reads; a reservation's stock condition refuses it;
//! - `RESERVATION#{id}` / `RESERVATION`: units taken for one order, and their status;
//! - `SELLER#{id}` / `PROFILE`: a seller's profile, with `version` (the condition of every
//!   status change) and the same two indexes: `gsi1pk = SELLERS#{status}` (`ByCategory`,
//!   for `?status=`) and `gsi2pk = SELLERS` (`Newest`), sorted by `{created_at}#{id}`;
//! - `OUTBOX` / `{event id}`: `seller.*` events not yet published, written in the transaction
//!   of the status change they report (see `shared::outbox`).
//!
//! Stock only moves in conditional writes: a reservation takes every line in one
//! transaction (`stock >= quantity` and not deleted on each, and each seller not suspended) or
//! nothing; a release puts units back in one
//! transaction conditioned on the reservation still being held.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shared::CorrelationId;
use shared::contracts::{Product, ReservationLine};
use shared::dynamo::{Cancelled, Item, PageError, Partition, Table, TransactFailure, item, key, transact_failure};
use shared::outbox::DynamoOutbox;
use shared::pagination::{Page, PageRequest};

use super::{CatalogueStore, Moved, SellerStore, StoreError};
use crate::domain::{ProductChanges, Reservation, ReservationStatus, Seller, SellerStatus, Shortage};

#[derive(Debug, Clone)]
pub struct DynamoStore {
    table: Table,
    outbox: DynamoOutbox,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at: Option<chrono::DateTime<Utc>>,
}

/// The index partition of deleted products, which no list reads.
const DELETED: &str = "DELETED";

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
            deleted_at: None,
        }
    }
}

/// A seller's profile as stored: the profile, its version, the reason of its last
/// suspension and its index keys.
#[derive(Serialize, Deserialize)]
struct SellerItem {
    #[serde(flatten)]
    seller: Seller,
    version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    suspended_reason: Option<String>,
    gsi1pk: String,
    gsi1sk: String,
    gsi2pk: String,
    gsi2sk: String,
}

impl SellerItem {
    fn new(seller: Seller, version: u64, suspended_reason: Option<String>) -> Self {
        let sort =
            format!("{}#{}", seller.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), seller.seller_id);
        Self {
            gsi1pk: format!("SELLERS#{}", seller.status.as_str()),
            gsi1sk: sort.clone(),
            gsi2pk: "SELLERS".into(),
            gsi2sk: sort,
            seller,
            version,
            suspended_reason,
        }
    }
}

fn seller_key(id: &str) -> Item {
    key(format!("SELLER#{id}"), "PROFILE")
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
        Self { outbox: DynamoOutbox::new(table.client.clone(), table.name.clone()), table }
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
            (
                "SET stock = stock - :q, version = version + :one",
                "attribute_exists(pk) AND stock >= :q AND attribute_not_exists(deleted_at)",
            )
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
        Ok(shortages_of(lines, &self.lookup(&ids).await?))
    }

    /// A transaction's check that a seller is not suspended (no profile: not suspended).
    fn seller_not_suspended(&self, seller_id: &str) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table.name)
            .set_key(Some(seller_key(seller_id)))
            .condition_expression("attribute_not_exists(pk) OR #s <> :suspended")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":suspended", AttributeValue::S(SellerStatus::Suspended.as_str().into()))
            .build()
            .map_err(shared::dynamo::error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}

/// The lines `on_sale` (the products on sale, with their stock) cannot cover.
fn shortages_of(lines: &[ReservationLine], on_sale: &[Product]) -> Vec<Shortage> {
    let stock: HashMap<&str, u32> = on_sale.iter().map(|p| (p.product_id.as_str(), p.stock)).collect();
    lines
        .iter()
        .filter_map(|line| {
            let available = stock.get(line.product_id.as_str()).copied().unwrap_or(0);
            (available < line.quantity).then(|| Shortage {
                product_id: line.product_id.clone(),
                requested: line.quantity,
                available,
            })
        })
        .collect()
}

impl DynamoStore {
    async fn seller_item(&self, id: &str) -> Result<Option<SellerItem>, StoreError> {
        Ok(self.table.get(seller_key(id)).await?)
    }

    /// Of `items`, the products on sale: not deleted, their seller not suspended (one read of
    /// the sellers' profiles for all of them).
    async fn on_sale(&self, items: Vec<ProductItem>) -> Result<Vec<Product>, StoreError> {
        let items: Vec<ProductItem> = items.into_iter().filter(|i| i.deleted_at.is_none()).collect();
        let mut sellers: Vec<&str> = items.iter().map(|i| i.product.seller_id.as_str()).collect();
        sellers.sort_unstable();
        sellers.dedup();
        let suspended: Vec<String> = self
            .table
            .get_many(sellers.into_iter().map(seller_key).collect())
            .await?
            .into_iter()
            .map(|item| serde_dynamo::from_item::<_, SellerItem>(item).map_err(shared::dynamo::error))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|s| s.seller.status == SellerStatus::Suspended)
            .map(|s| s.seller.seller_id)
            .collect();
        Ok(items.into_iter().map(|i| i.product).filter(|p| !suspended.contains(&p.seller_id)).collect())
    }

    /// The products of `ids` as stored, deleted or not.
    async fn product_items(&self, ids: &[String]) -> Result<Vec<ProductItem>, StoreError> {
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        let keys = unique.into_iter().map(|id| product_key(id)).collect();
        self.table
            .get_many(keys)
            .await?
            .into_iter()
            .map(|item| Ok(serde_dynamo::from_item::<_, ProductItem>(item).map_err(shared::dynamo::error)?))
            .collect()
    }
}

/// A transaction holds 100 items: a reservation's lines, its record and its sellers' checks.
const MAX_TRANSACTION_ITEMS: usize = 100;

impl SellerStore for DynamoStore {
    type Outbox = DynamoOutbox;

    fn outbox(&self) -> &DynamoOutbox {
        &self.outbox
    }

    async fn create_seller(&self, seller: &Seller) -> Result<bool, StoreError> {
        Ok(self.table.put_new(seller_key(&seller.seller_id), &SellerItem::new(seller.clone(), 1, None)).await?)
    }

    async fn seller(&self, seller_id: &str) -> Result<Option<Seller>, StoreError> {
        Ok(self.seller_item(seller_id).await?.map(|item| item.seller))
    }

    async fn sellers(&self, status: Option<SellerStatus>, page: &PageRequest) -> Result<Page<Seller>, StoreError> {
        let partition = match status {
            Some(status) => Partition {
                index: Some("ByCategory"),
                attribute: "gsi1pk",
                value: format!("SELLERS#{}", status.as_str()),
                sort_attribute: "gsi1sk",
                sort_prefix: None,
            },
            None => Partition {
                index: Some("Newest"),
                attribute: "gsi2pk",
                value: "SELLERS".to_owned(),
                sort_attribute: "gsi2sk",
                sort_prefix: None,
            },
        };
        let found = self.table.page::<SellerItem>(partition, page).await.map_err(|e| match e {
            PageError::ForeignCursor => StoreError::BadCursor,
            PageError::Dynamo(e) => StoreError::Unavailable(e),
        })?;
        Ok(found.map(|i| i.seller))
    }

    async fn move_seller(
        &self,
        seller_id: &str,
        to: SellerStatus,
        reason: Option<&str>,
        correlation_id: &CorrelationId,
    ) -> Result<Moved, StoreError> {
        for _ in 0..TRIES {
            let Some(current) = self.seller_item(seller_id).await? else { return Ok(Moved::Unknown) };
            let Some(moved) = current.seller.moved(to, Utc::now()) else { return Ok(Moved::Unchanged(current.seller)) };
            let events = moved.status_events(reason, correlation_id);
            let reason = reason.map(str::to_owned).or(current.suspended_reason);
            let item = item(seller_key(seller_id), &SellerItem::new(moved.clone(), current.version + 1, reason))?;
            let put = Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(item))
                .condition_expression("version = :version")
                .expression_attribute_values(":version", number(current.version))
                .build()
                .map_err(shared::dynamo::error)?;
            let mut writes = vec![TransactWriteItem::builder().put(put).build()];
            for envelope in &events {
                writes.push(self.outbox.entry(envelope).map_err(shared::dynamo::error)?);
            }
            // `false`: moved concurrently; read it again (the other move may have made this one a no-op).
            if self.table.transact(writes).await? {
                return Ok(Moved::Changed(moved, events));
            }
        }
        Err(StoreError::Conflict)
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
        let item = self.product_item(product_id).await?;
        Ok(self.on_sale(item.into_iter().collect()).await?.pop())
    }

    async fn delete(&self, product_id: &str, seller_id: &str) -> Result<(), StoreError> {
        let key = product_key(product_id);
        if !shared::dynamo::storable(&key) {
            return Err(StoreError::NotFound);
        }
        let deleted = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key))
            .update_expression("SET deleted_at = :now, gsi1pk = :deleted, gsi2pk = :deleted, version = version + :one")
            .condition_expression("attribute_exists(pk) AND seller_id = :seller AND attribute_not_exists(deleted_at)")
            .expression_attribute_values(":now", AttributeValue::S(Utc::now().to_rfc3339()))
            .expression_attribute_values(":deleted", AttributeValue::S(DELETED.into()))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":seller", AttributeValue::S(seller_id.to_owned()))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // Unknown, another seller's, or deleted already: all "not found".
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::NotFound)
            }
            Err(e) => Err(shared::dynamo::error(e).into()),
        }
    }

    async fn update(&self, product_id: &str, seller_id: &str, changes: &ProductChanges) -> Result<Product, StoreError> {
        for _ in 0..TRIES {
            let current = self
                .product_item(product_id)
                .await?
                .filter(|i| i.product.seller_id == seller_id && i.deleted_at.is_none())
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
        // A page may hold fewer than `limit` products: those of suspended sellers are left
        // out (the cursor still goes on from the last one read).
        Ok(Page { items: self.on_sale(found.items).await?, next_cursor: found.next_cursor })
    }

    async fn lookup(&self, ids: &[String]) -> Result<Vec<Product>, StoreError> {
        let items = self.product_items(ids).await?;
        self.on_sale(items).await
    }

    async fn reserve(&self, reservation_id: &str, lines: &[ReservationLine]) -> Result<Reservation, StoreError> {
        // What is not on sale (deleted, or its seller suspended) has nothing to sell: a
        // shortage with `available: 0`, unless this reservation was made before (its answer
        // again). The transaction checks it again: each product not deleted, each seller not
        // suspended (when the checks fit in it), so a change meanwhile wins.
        let ids: Vec<String> = lines.iter().map(|l| l.product_id.clone()).collect();
        let stored = self.product_items(&ids).await?;
        let mut sellers: Vec<String> = stored.iter().map(|i| i.product.seller_id.clone()).collect();
        sellers.sort_unstable();
        sellers.dedup();
        let on_sale = self.on_sale(stored).await?;
        if lines.iter().any(|l| !on_sale.iter().any(|p| p.product_id == l.product_id)) {
            if let Some(existing) = self.table.get::<Reservation>(reservation_key(reservation_id)).await? {
                return if existing.status == ReservationStatus::Released {
                    Err(StoreError::Released)
                } else {
                    Ok(existing)
                };
            }
            return Err(StoreError::Shortages(shortages_of(lines, &on_sale)));
        }
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
        if items.len() + sellers.len() < MAX_TRANSACTION_ITEMS {
            for seller_id in &sellers {
                items.push(self.seller_not_suspended(seller_id)?);
            }
        }
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
