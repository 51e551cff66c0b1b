//! The catalogue in the Seller table (pk/sk):
//! - `PRODUCT#{id}` / `PRODUCT`: a product, with `version` (bumped by every write of it, the
//!   condition of updates) and two index keys: `gsi1pk = CATEGORY#{category}` (index
//!   `ByCategory`) and `gsi2pk = PRODUCTS` (index `Newest`), both sorted by `{created_at}#{id}`.
//!   A deleted product keeps its item (placed orders name it) with `deleted_at`, and both index
//!   keys become `DELETED`, a partition no list reads; a reservation's stock condition refuses it;
//!   A product with `stock_shards` N > 1 keeps `stock` 0 here: its stock is in its shards;
//! - `STOCK#{id}#{k}` / `STOCK`, k = 0..N-1: one shard of a sharded product's stock each, every
//!   one under a partition key of its own so that the shards spread over DynamoDB's partitions
//!   (docs/capacity.md); a deleted product's shards get its `deleted_at` too;
//! - `RESERVATION#{id}` / `RESERVATION`: units taken for one order (and from which shards),
//!   and their status;
//! - `SELLER#{id}` / `PROFILE`: a seller's profile, with `version` (the condition of every
//!   status change) and the same two indexes: `gsi1pk = SELLERS#{status}` (`ByCategory`,
//!   for `?status=`) and `gsi2pk = SELLERS` (`Newest`), sorted by `{created_at}#{id}`;
//! - `OUTBOX` / `{event id}`: `seller.*` events not yet published, written in the transaction
//!   of the status change they report (see `shared::outbox`).
//!
//! Stock only moves in conditional writes: a reservation takes every line in one
//! transaction (`stock >= quantity` and not deleted on each product item or shard it takes
//! from, and each seller of an unsharded product not suspended) or nothing; a release puts
//! units back in one transaction conditioned on the reservation still being held.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shared::CorrelationId;
use shared::contracts::{Product, ReservationLine};
use shared::dynamo::{Cancelled, Item, PageError, Partition, Table, TransactFailure, item, key, transact_failure};
use shared::outbox::DynamoOutbox;
use shared::pagination::{Page, PageRequest};

use super::{CatalogueStore, Moved, SellerStore, StoreError};
use crate::domain::{
    ProductChanges, Reservation, ReservationStatus, Seller, SellerStatus, ShardTake, Shortage, spread, take_from_shards,
};

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
    /// The item of `product`; a sharded one's stock is left to its shards.
    fn new(mut product: Product, version: u64) -> Self {
        if product.stock_shards > 1 {
            product.stock = 0;
        }
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

/// One shard of a sharded product's stock, at [`shard_key`].
#[derive(Serialize, Deserialize)]
struct ShardItem {
    product_id: String,
    shard: u32,
    stock: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at: Option<chrono::DateTime<Utc>>,
}

fn shard_key(product_id: &str, shard: u32) -> Item {
    key(format!("STOCK#{product_id}#{shard}"), "STOCK")
}

/// Where a reservation line's units are taken from or given back to.
#[derive(Clone, Copy)]
enum StockAt<'a> {
    /// The product item of an unsharded product.
    Product(&'a str),
    Shard(&'a str, u32),
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

/// A number below `n` (at least 1) from the clock's nanoseconds: enough to spread pauses and
/// concurrent buyers' first shards, not for secrets.
fn random_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    u64::from(nanos) % n.max(1)
}

fn jitter(ms: u64) -> u64 {
    ms / 2 + random_below(ms)
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

    /// A product of `seller_id` on sale; [`StoreError::NotFound`] for an unknown one, another
    /// seller's, or a deleted one alike.
    async fn own_product(&self, id: &str, seller_id: &str) -> Result<ProductItem, StoreError> {
        let item = self.product_item(id).await?;
        item.filter(|i| i.product.seller_id == seller_id && i.deleted_at.is_none()).ok_or(StoreError::NotFound)
    }

    /// A transaction's move of `quantity` units out of (`take`) or back into one stock item.
    /// A product item's change also holds only while the product is unsharded, so units never
    /// go into (or come from) the count a sharded product no longer keeps there.
    fn stock_change(&self, at: StockAt, quantity: u32, take: bool) -> Result<TransactWriteItem, StoreError> {
        let (key, expression, condition) = match (at, take) {
            (StockAt::Product(id), true) => (
                product_key(id),
                "SET stock = stock - :q, version = version + :one",
                "attribute_exists(pk) AND stock >= :q AND attribute_not_exists(deleted_at) \
                 AND attribute_not_exists(stock_shards)",
            ),
            (StockAt::Product(id), false) => (
                product_key(id),
                "SET stock = stock + :q, version = version + :one",
                "attribute_exists(pk) AND attribute_not_exists(stock_shards)",
            ),
            (StockAt::Shard(id, k), true) => (
                shard_key(id, k),
                "SET stock = stock - :q",
                "attribute_exists(pk) AND stock >= :q AND attribute_not_exists(deleted_at)",
            ),
            (StockAt::Shard(id, k), false) => (shard_key(id, k), "SET stock = stock + :q", "attribute_exists(pk)"),
        };
        let mut update = Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(key))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_values(":q", number(quantity));
        if matches!(at, StockAt::Product(_)) {
            update = update.expression_attribute_values(":one", number(1));
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(shared::dynamo::error)?).build())
    }

    /// The count in each shard of the sharded products among `items` that are not deleted
    /// (a deleted one sells nothing): one read of all their shards (consistent), a shard not
    /// found counting 0.
    async fn shard_counts<'a>(
        &self,
        items: impl Iterator<Item = &'a ProductItem>,
    ) -> Result<HashMap<String, Vec<u32>>, StoreError> {
        let mut counts: HashMap<String, Vec<u32>> = HashMap::new();
        let mut keys = Vec::new();
        for item in items.filter(|i| i.product.stock_shards > 1 && i.deleted_at.is_none()) {
            let (id, shards) = (item.product.product_id.as_str(), item.product.stock_shards);
            if counts.insert(id.to_owned(), vec![0; shards as usize]).is_none() {
                keys.extend((0..shards).map(|k| shard_key(id, k)));
            }
        }
        if keys.is_empty() {
            return Ok(counts);
        }
        for item in self.table.get_many(keys).await? {
            let shard: ShardItem = serde_dynamo::from_item(item).map_err(shared::dynamo::error)?;
            if let Some(count) = counts.get_mut(&shard.product_id).and_then(|c| c.get_mut(shard.shard as usize)) {
                *count = shard.stock;
            }
        }
        Ok(counts)
    }

    /// The writes that set a product's stock to `stock` over `shards` items, from `counts` as
    /// read (empty for an unsharded product, whose product item carries its stock): each
    /// shard written on the condition that it still holds what was read, shards no longer
    /// wanted deleted on the same condition, so that no reservation meanwhile is lost.
    fn set_shards(
        &self,
        product_id: &str,
        counts: &[u32],
        stock: u32,
        shards: u32,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut writes = Vec::new();
        let wanted = if shards > 1 { spread(stock, shards) } else { Vec::new() };
        for k in 0..wanted.len().max(counts.len()) {
            let at = shard_key(product_id, k as u32);
            let read = counts.get(k);
            let write = match wanted.get(k) {
                Some(&units) => {
                    let shard = ShardItem {
                        product_id: product_id.to_owned(),
                        shard: k as u32,
                        stock: units,
                        deleted_at: None,
                    };
                    let put = Put::builder().table_name(&self.table.name).set_item(Some(item(at, &shard)?));
                    let put = match read {
                        Some(old) => {
                            put.condition_expression("stock = :old").expression_attribute_values(":old", number(old))
                        }
                        None => put.condition_expression("attribute_not_exists(pk)"),
                    };
                    TransactWriteItem::builder().put(put.build().map_err(shared::dynamo::error)?).build()
                }
                None => {
                    let delete = aws_sdk_dynamodb::types::Delete::builder()
                        .table_name(&self.table.name)
                        .set_key(Some(at))
                        .condition_expression("stock = :old")
                        .expression_attribute_values(":old", number(read.copied().unwrap_or(0)))
                        .build()
                        .map_err(shared::dynamo::error)?;
                    TransactWriteItem::builder().delete(delete).build()
                }
            };
            writes.push(write);
        }
        Ok(writes)
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

/// A reservation made before, as the same request gets it again: it, unless released.
fn made_before(existing: Reservation) -> Result<Reservation, StoreError> {
    match existing.status {
        ReservationStatus::Released => Err(StoreError::Released),
        _ => Ok(existing),
    }
}

/// Where releasing `reservation` puts its units, and how many: (product, shard or `None` for
/// the product item) → units. As recorded when `now` is `None`; else for the products' stock
/// shards `now` (1 if not known): all of a product's units to its item if it is unsharded
/// now, else each take to its shard, or to shard k mod N if the product has fewer shards now
/// (units taken from an unsharded product go to shard 0).
fn give_back(reservation: &Reservation, now: Option<&HashMap<String, u32>>) -> BTreeMap<(String, Option<u32>), u32> {
    let mut targets = BTreeMap::new();
    for line in &reservation.items {
        let mut takes: Vec<(Option<u32>, u32)> = reservation
            .shards
            .iter()
            .filter(|t| t.product_id == line.product_id)
            .map(|t| (Some(t.shard), t.quantity))
            .collect();
        if takes.is_empty() {
            takes.push((None, line.quantity));
        }
        for (shard, quantity) in takes {
            let at = match now.map(|n| n.get(&line.product_id).copied().unwrap_or(1)) {
                None => shard,
                Some(1) => None,
                Some(n) => Some(shard.unwrap_or(0) % n),
            };
            *targets.entry((line.product_id.clone(), at)).or_default() += quantity;
        }
    }
    targets
}

impl DynamoStore {
    async fn seller_item(&self, id: &str) -> Result<Option<SellerItem>, StoreError> {
        Ok(self.table.get(seller_key(id)).await?)
    }

    /// Of `items`, the products on sale, each sharded one's stock summed from its shards.
    async fn products(&self, items: Vec<ProductItem>) -> Result<Vec<Product>, StoreError> {
        let counts = self.shard_counts(items.iter()).await?;
        self.on_sale(items, &counts).await
    }

    /// Of `items`, the products on sale: not deleted, their seller not suspended (one read of
    /// the sellers' profiles for all of them); a sharded one's stock is the sum of its `counts`.
    async fn on_sale(
        &self,
        items: Vec<ProductItem>,
        counts: &HashMap<String, Vec<u32>>,
    ) -> Result<Vec<Product>, StoreError> {
        let mut items: Vec<ProductItem> = items.into_iter().filter(|i| i.deleted_at.is_none()).collect();
        for item in &mut items {
            if let Some(shards) = counts.get(&item.product.product_id) {
                item.product.stock = shards.iter().sum();
            }
        }
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
/// Plans of one reservation before giving up: each failed one means another took units from
/// an item it counted on, so a line of a product with N shards may meet up to about N of them.
const RESERVE_TRIES: usize = 4 + 2 * crate::domain::MAX_STOCK_SHARDS as usize;

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
        let put = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(shared::dynamo::error)?;
        let mut writes = vec![TransactWriteItem::builder().put(put).build()];
        writes.extend(self.set_shards(&product.product_id, &[], product.stock, product.stock_shards)?);
        // A new id cannot be there: `false` (it was) is a fault, not a conflict to report.
        if self.table.transact(writes).await? {
            Ok(())
        } else {
            Err(StoreError::Unavailable(shared::dynamo::DynamoError(format!("{} exists already", product.product_id))))
        }
    }

    async fn get(&self, product_id: &str) -> Result<Option<Product>, StoreError> {
        let item = self.product_item(product_id).await?;
        Ok(self.products(item.into_iter().collect()).await?.pop())
    }

    async fn delete(&self, product_id: &str, seller_id: &str) -> Result<(), StoreError> {
        let now = AttributeValue::S(Utc::now().to_rfc3339());
        for _ in 0..TRIES {
            let current = self.own_product(product_id, seller_id).await?;
            let shards = current.product.stock_shards;
            let product = Update::builder()
                .table_name(&self.table.name)
                .set_key(Some(product_key(product_id)))
                .update_expression(
                    "SET deleted_at = :now, gsi1pk = :deleted, gsi2pk = :deleted, version = version + :one",
                )
                // Still its seller's, on sale and over the shards read; reservations meanwhile
                // do not stop a deletion.
                .condition_expression(match shards {
                    1 => "seller_id = :seller AND attribute_not_exists(deleted_at) AND attribute_not_exists(stock_shards)",
                    _ => "seller_id = :seller AND attribute_not_exists(deleted_at) AND stock_shards = :shards",
                })
                .expression_attribute_values(":now", now.clone())
                .expression_attribute_values(":deleted", AttributeValue::S(DELETED.into()))
                .expression_attribute_values(":one", number(1))
                .expression_attribute_values(":seller", AttributeValue::S(seller_id.to_owned()));
            let product = match shards {
                1 => product,
                _ => product.expression_attribute_values(":shards", number(shards)),
            };
            let product = product.build().map_err(shared::dynamo::error)?;
            let mut writes = vec![TransactWriteItem::builder().update(product).build()];
            // Its shards too, so that a reservation conditioned on a shard refuses it.
            for k in (0..shards).filter(|_| shards > 1) {
                let shard = Update::builder()
                    .table_name(&self.table.name)
                    .set_key(Some(shard_key(product_id, k)))
                    .update_expression("SET deleted_at = :now")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":now", now.clone())
                    .build()
                    .map_err(shared::dynamo::error)?;
                writes.push(TransactWriteItem::builder().update(shard).build());
            }
            // `false`: changed meanwhile (or a shard missing); read it again.
            if self.table.transact(writes).await? {
                return Ok(());
            }
        }
        Err(StoreError::Conflict)
    }

    async fn update(&self, product_id: &str, seller_id: &str, changes: &ProductChanges) -> Result<Product, StoreError> {
        for _ in 0..TRIES {
            let current = self.own_product(product_id, seller_id).await?;
            let mut counts = self.shard_counts(std::iter::once(&current)).await?;
            let counts = counts.remove(product_id).unwrap_or_default();
            let mut product = current.product.clone();
            if !counts.is_empty() {
                product.stock = counts.iter().sum();
            }
            let changed = changes.apply(&product, Utc::now())?;
            let item = item(product_key(product_id), &ProductItem::new(changed.clone(), current.version + 1))?;
            let put = Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(item))
                .condition_expression("version = :version")
                .expression_attribute_values(":version", number(current.version))
                .build()
                .map_err(shared::dynamo::error)?;
            let mut writes = vec![TransactWriteItem::builder().put(put).build()];
            // A sharded product (before or after) whose stock is set or spread over another
            // number of shards: the shards are written too.
            let sharded = product.stock_shards > 1 || changed.stock_shards > 1;
            if sharded && (changed.stock, changed.stock_shards) != (product.stock, product.stock_shards) {
                writes.extend(self.set_shards(product_id, &counts, changed.stock, changed.stock_shards)?);
            }
            // `false`: changed meanwhile (a reservation, another edit); read it again.
            if self.table.transact(writes).await? {
                return Ok(changed);
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
        Ok(Page { items: self.products(found.items).await?, next_cursor: found.next_cursor })
    }

    async fn lookup(&self, ids: &[String]) -> Result<Vec<Product>, StoreError> {
        let items = self.product_items(ids).await?;
        self.products(items).await
    }

    async fn reserve(&self, reservation_id: &str, lines: &[ReservationLine]) -> Result<Reservation, StoreError> {
        let ids: Vec<String> = lines.iter().map(|l| l.product_id.clone()).collect();
        let mut pauses = CONTENTION_PAUSES_MS.into_iter();
        // A failed condition means someone took units meanwhile: the stock is read again and,
        // unless too little is left now, the reservation planned again from what is there.
        for _ in 0..RESERVE_TRIES {
            let stored = self.product_items(&ids).await?;
            // Sellers of unsharded products are checked in the transaction. A sharded (hot)
            // product's seller would make its profile the hot item instead, so that seller's
            // status is the one just read (docs/capacity.md).
            let mut sellers: Vec<String> =
                stored.iter().filter(|i| i.product.stock_shards == 1).map(|i| i.product.seller_id.clone()).collect();
            sellers.sort_unstable();
            sellers.dedup();
            let counts = self.shard_counts(stored.iter()).await?;
            // What is not on sale (deleted, or its seller suspended) has nothing to sell.
            let shortages = shortages_of(lines, &self.on_sale(stored, &counts).await?);
            if !shortages.is_empty() {
                // Made before, its units now missing because it holds them: its answer again.
                if let Some(existing) = self.table.get::<Reservation>(reservation_key(reservation_id)).await? {
                    return made_before(existing);
                }
                return Err(StoreError::Shortages(shortages));
            }
            let mut writes = Vec::new();
            let mut shards = Vec::new();
            for line in lines {
                let Some(held) = counts.get(&line.product_id) else {
                    writes.push(self.stock_change(StockAt::Product(&line.product_id), line.quantity, true)?);
                    continue;
                };
                let start = random_below(held.len() as u64) as usize;
                // Not short, so the shards hold enough.
                for (shard, quantity) in take_from_shards(held, start, line.quantity).ok_or(StoreError::Conflict)? {
                    writes.push(self.stock_change(StockAt::Shard(&line.product_id, shard), quantity, true)?);
                    shards.push(ShardTake { product_id: line.product_id.clone(), shard, quantity });
                }
            }
            if writes.len() >= MAX_TRANSACTION_ITEMS {
                return Err(StoreError::Invalid(shared::Invalid(
                    "these lines take from more stock items than one transaction holds; reserve fewer products at once"
                        .into(),
                )));
            }
            if writes.len() + sellers.len() < MAX_TRANSACTION_ITEMS {
                for seller_id in &sellers {
                    writes.push(self.seller_not_suspended(seller_id)?);
                }
            }
            let reservation = Reservation {
                reservation_id: reservation_id.to_owned(),
                status: ReservationStatus::Held,
                items: lines.to_vec(),
                shards,
                created_at: Utc::now(),
            };
            let record = Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(item(reservation_key(reservation_id), &reservation)?))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(shared::dynamo::error)?;
            writes.push(TransactWriteItem::builder().put(record).build());
            loop {
                let written =
                    self.table.client.transact_write_items().set_transact_items(Some(writes.clone())).send().await;
                let Err(error) = written else { return Ok(reservation) };
                match transact_failure(&error) {
                    TransactFailure::Cancelled { why: Cancelled::ConditionFailed, codes } => {
                        if codes.last().map(String::as_str) == Some("ConditionalCheckFailed") {
                            let existing = self.table.get(reservation_key(reservation_id)).await?;
                            return made_before(existing.ok_or(StoreError::Conflict)?);
                        }
                        break; // stock taken (or a seller suspended) meanwhile: read again
                    }
                    // A hot product's checkouts contend in DynamoDB (TransactionConflict): that
                    // is not a shortage, so the same transaction is tried again after a pause.
                    failure if failure.is_transient() => {
                        // Contended after every pause: the last contention is the error.
                        let Some(pause) = pauses.next() else { return Err(shared::dynamo::error(error).into()) };
                        tracing::warn!(?failure, reservation_id, "reservation contended; trying again");
                        tokio::time::sleep(std::time::Duration::from_millis(jitter(pause))).await;
                    }
                    _ => return Err(shared::dynamo::error(error).into()),
                }
            }
        }
        Err(StoreError::Conflict)
    }

    async fn release(&self, reservation_id: &str, committed: bool) -> Result<Option<Reservation>, StoreError> {
        for attempt in 0..TRIES {
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
            // Back where they were taken from; after a failed try, where each product keeps its
            // stock now (it may have been sharded or re-sharded since).
            let now = match attempt {
                0 => None,
                _ => {
                    let ids: Vec<String> = reservation.items.iter().map(|l| l.product_id.clone()).collect();
                    let stored = self.product_items(&ids).await?;
                    Some(stored.into_iter().map(|i| (i.product.product_id, i.product.stock_shards)).collect())
                }
            };
            for ((product_id, shard), quantity) in give_back(&reservation, now.as_ref()) {
                let at = shard.map_or(StockAt::Product(&product_id), |k| StockAt::Shard(&product_id, k));
                items.push(self.stock_change(at, quantity, false)?);
            }
            match self.table.client.transact_write_items().set_transact_items(Some(items)).send().await {
                Ok(_) => {
                    reservation.status = ReservationStatus::Released;
                    return Ok(Some(reservation));
                }
                // Released (or committed) concurrently, re-sharded, or contended: read it again.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reservation(items: &[(&str, u32)], shards: &[(&str, u32, u32)]) -> Reservation {
        let mut reservation = Reservation::tombstone("rsv_1", Utc::now());
        reservation.items =
            items.iter().map(|(p, q)| ReservationLine { product_id: (*p).into(), quantity: *q }).collect();
        reservation.shards =
            shards.iter().map(|(p, k, q)| ShardTake { product_id: (*p).into(), shard: *k, quantity: *q }).collect();
        reservation
    }

    fn at(targets: &[(&str, Option<u32>, u32)]) -> BTreeMap<(String, Option<u32>), u32> {
        targets.iter().map(|(p, k, q)| (((*p).to_owned(), *k), *q)).collect()
    }

    #[test]
    fn units_go_back_where_they_were_taken_from_or_where_the_product_keeps_its_stock_now() {
        let taken = reservation(&[("a", 2), ("b", 3)], &[("b", 1, 2), ("b", 3, 1)]);
        assert_eq!(give_back(&taken, None), at(&[("a", None, 2), ("b", Some(1), 2), ("b", Some(3), 1)]));
        let now = |b: u32| HashMap::from([("a".to_owned(), 1), ("b".to_owned(), b)]);
        assert_eq!(
            give_back(&taken, Some(&now(2))),
            at(&[("a", None, 2), ("b", Some(1), 3)]),
            "re-sharded to 2: shards 1 and 3 are both shard 1 now, in one write"
        );
        assert_eq!(give_back(&taken, Some(&now(1))), at(&[("a", None, 2), ("b", None, 3)]), "unsharded since");
        let sharded_since = HashMap::from([("a".to_owned(), 4), ("b".to_owned(), 4)]);
        assert_eq!(
            give_back(&taken, Some(&sharded_since)),
            at(&[("a", Some(0), 2), ("b", Some(1), 2), ("b", Some(3), 1)]),
            "a product sharded since gets its units in shard 0"
        );
    }
}
