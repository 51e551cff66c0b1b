//! The catalogue and its stock in memory, for the handler tests and the money-path
//! simulation.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::Utc;
use shared::CorrelationId;
use shared::contracts::{Product, ReservationLine};
use shared::memory::lock;
use shared::outbox::MemoryOutbox;
use shared::pagination::{Page, PageRequest};

use super::{CatalogueStore, Moved, SellerStore, StoreError};
use crate::domain::{ProductChanges, Reservation, ReservationStatus, Seller, SellerStatus, Shortage};

#[derive(Debug, Default)]
pub struct MemoryStore {
    products: Mutex<HashMap<String, Product>>,
    reservations: Mutex<HashMap<String, Reservation>>,
    sellers: Mutex<HashMap<String, Seller>>,
    deleted: Mutex<HashSet<String>>,
    pub outbox: MemoryOutbox,
}

impl MemoryStore {
    /// Of `products`, those on sale: not deleted, their seller not suspended.
    fn on_sale<'a>(&self, products: impl IntoIterator<Item = &'a Product>) -> Vec<Product> {
        let (deleted, sellers) = (lock(&self.deleted), lock(&self.sellers));
        products
            .into_iter()
            .filter(|p| !deleted.contains(&p.product_id))
            .filter(|p| sellers.get(&p.seller_id).is_none_or(|s| s.status != SellerStatus::Suspended))
            .cloned()
            .collect()
    }
}

/// One page of `items` (sorted already) from the offset a cursor of this store holds.
fn offset_page<T: Clone>(items: &[T], page: &PageRequest) -> Page<T> {
    let skip = page.start.as_ref().and_then(|s| s.get("offset")?.as_s().ok()?.parse().ok()).unwrap_or(0usize);
    let taken: Vec<T> = items.iter().skip(skip).take(page.limit as usize).cloned().collect();
    let next = skip + taken.len();
    let next_cursor = (next < items.len()).then(|| {
        let key = HashMap::from([("offset".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(next.to_string()))]);
        shared::pagination::encode_cursor(&key)
    });
    Page { items: taken, next_cursor }
}

impl MemoryStore {
    /// A store where `seller_id` is a seller in `status` (as registering, then the admin, made it).
    pub fn with_seller(seller_id: &str, status: SellerStatus) -> Self {
        let store = Self::default();
        let now = Utc::now();
        let seller = Seller {
            seller_id: seller_id.to_owned(),
            name: "Seller".into(),
            email: "seller@example.com".into(),
            status,
            created_at: now,
            updated_at: now,
        };
        lock(&store.sellers).insert(seller_id.to_owned(), seller);
        store
    }
}

impl SellerStore for MemoryStore {
    type Outbox = MemoryOutbox;

    fn outbox(&self) -> &MemoryOutbox {
        &self.outbox
    }

    async fn create_seller(&self, seller: &Seller) -> Result<bool, StoreError> {
        let mut sellers = lock(&self.sellers);
        if sellers.contains_key(&seller.seller_id) {
            return Ok(false);
        }
        sellers.insert(seller.seller_id.clone(), seller.clone());
        Ok(true)
    }

    async fn seller(&self, seller_id: &str) -> Result<Option<Seller>, StoreError> {
        Ok(lock(&self.sellers).get(seller_id).cloned())
    }

    async fn sellers(&self, status: Option<SellerStatus>, page: &PageRequest) -> Result<Page<Seller>, StoreError> {
        let mut sellers: Vec<Seller> =
            lock(&self.sellers).values().filter(|s| status.is_none_or(|st| s.status == st)).cloned().collect();
        sellers.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.seller_id.cmp(&a.seller_id)));
        Ok(offset_page(&sellers, page))
    }

    async fn move_seller(
        &self,
        seller_id: &str,
        to: SellerStatus,
        reason: Option<&str>,
        correlation_id: &CorrelationId,
    ) -> Result<Moved, StoreError> {
        let mut sellers = lock(&self.sellers);
        let Some(seller) = sellers.get_mut(seller_id) else { return Ok(Moved::Unknown) };
        Ok(match seller.moved(to, Utc::now()) {
            Some(moved) => {
                let events = moved.status_events(reason, correlation_id);
                events.iter().for_each(|envelope| self.outbox.add(envelope));
                *seller = moved.clone();
                Moved::Changed(moved, events)
            }
            None => Moved::Unchanged(seller.clone()),
        })
    }
}

impl CatalogueStore for MemoryStore {
    async fn create(&self, product: &Product) -> Result<(), StoreError> {
        lock(&self.products).insert(product.product_id.clone(), product.clone());
        Ok(())
    }

    async fn get(&self, product_id: &str) -> Result<Option<Product>, StoreError> {
        let product = lock(&self.products).get(product_id).cloned();
        Ok(self.on_sale(product.iter()).pop())
    }

    async fn delete(&self, product_id: &str, seller_id: &str) -> Result<(), StoreError> {
        let products = lock(&self.products);
        products.get(product_id).filter(|p| p.seller_id == seller_id).ok_or(StoreError::NotFound)?;
        if lock(&self.deleted).insert(product_id.to_owned()) { Ok(()) } else { Err(StoreError::NotFound) }
    }

    async fn update(&self, product_id: &str, seller_id: &str, changes: &ProductChanges) -> Result<Product, StoreError> {
        if lock(&self.deleted).contains(product_id) {
            return Err(StoreError::NotFound);
        }
        let mut products = lock(&self.products);
        let product = products.get_mut(product_id).filter(|p| p.seller_id == seller_id).ok_or(StoreError::NotFound)?;
        *product = changes.apply(product, Utc::now())?;
        Ok(product.clone())
    }

    async fn list(&self, category: Option<&str>, page: &PageRequest) -> Result<Page<Product>, StoreError> {
        let all: Vec<Product> = lock(&self.products).values().cloned().collect();
        let mut products: Vec<Product> =
            self.on_sale(all.iter()).into_iter().filter(|p| category.is_none_or(|c| p.category == c)).collect();
        products.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.product_id.cmp(&a.product_id)));
        Ok(offset_page(&products, page))
    }

    async fn lookup(&self, ids: &[String]) -> Result<Vec<Product>, StoreError> {
        let found: Vec<Product> = {
            let products = lock(&self.products);
            ids.iter().filter_map(|id| products.get(id).cloned()).collect()
        };
        Ok(self.on_sale(found.iter()))
    }

    async fn reserve(&self, reservation_id: &str, lines: &[ReservationLine]) -> Result<Reservation, StoreError> {
        let mut reservations = lock(&self.reservations);
        if let Some(existing) = reservations.get(reservation_id) {
            return if existing.status == ReservationStatus::Released {
                Err(StoreError::Released)
            } else {
                Ok(existing.clone())
            };
        }
        let mut products = lock(&self.products);
        let on_sale: HashSet<String> = self.on_sale(products.values()).into_iter().map(|p| p.product_id).collect();
        let shortages: Vec<Shortage> = lines
            .iter()
            .filter_map(|line| {
                let available =
                    products.get(&line.product_id).filter(|p| on_sale.contains(&p.product_id)).map_or(0, |p| p.stock);
                (available < line.quantity).then(|| Shortage {
                    product_id: line.product_id.clone(),
                    requested: line.quantity,
                    available,
                })
            })
            .collect();
        if !shortages.is_empty() {
            return Err(StoreError::Shortages(shortages));
        }
        for line in lines {
            if let Some(product) = products.get_mut(&line.product_id) {
                product.stock -= line.quantity;
            }
        }
        let reservation = Reservation {
            reservation_id: reservation_id.to_owned(),
            status: ReservationStatus::Held,
            items: lines.to_vec(),
            shards: Vec::new(),
            created_at: Utc::now(),
        };
        reservations.insert(reservation_id.to_owned(), reservation.clone());
        Ok(reservation)
    }

    async fn release(&self, reservation_id: &str, committed: bool) -> Result<Option<Reservation>, StoreError> {
        let mut reservations = lock(&self.reservations);
        let reservation = reservations
            .entry(reservation_id.to_owned())
            .or_insert_with(|| Reservation::tombstone(reservation_id, Utc::now()));
        let releasable = reservation.status == ReservationStatus::Held
            || (committed && reservation.status == ReservationStatus::Committed);
        if releasable {
            let mut products = lock(&self.products);
            for line in &reservation.items {
                if let Some(product) = products.get_mut(&line.product_id) {
                    product.stock += line.quantity;
                }
            }
            reservation.status = ReservationStatus::Released;
        }
        Ok(Some(reservation.clone()))
    }

    async fn commit(&self, reservation_id: &str) -> Result<Option<Reservation>, StoreError> {
        let mut reservations = lock(&self.reservations);
        let Some(reservation) = reservations.get_mut(reservation_id) else { return Ok(None) };
        if reservation.status == ReservationStatus::Held {
            reservation.status = ReservationStatus::Committed;
        }
        Ok(Some(reservation.clone()))
    }
}
