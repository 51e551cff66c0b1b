//! The port the Seller handlers keep the catalogue and stock through; [`dynamo::DynamoStore`]
//! on AWS, [`MemoryStore`] in tests.

pub mod dynamo;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use chrono::Utc;
use shared::pagination::{Page, PageRequest};

use crate::domain::{Line, Product, ProductChanges, Reservation, ReservationStatus, Shortage};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such product")]
    NotFound,
    #[error("{0}")]
    Invalid(#[from] crate::domain::Invalid),
    #[error("not enough stock")]
    Shortages(Vec<Shortage>),
    #[error("the product changed concurrently; try again")]
    Conflict,
    /// The reservation id was released (or released before it was made): it holds nothing
    /// and never will; a new reservation needs a new id.
    #[error("the reservation was released")]
    Released,
    #[error("the catalogue is unavailable: {0}")]
    Unavailable(String),
    #[error("the cursor was not given out for this list")]
    BadCursor,
}

pub trait CatalogueStore: Send + Sync {
    fn create(&self, product: &Product) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(&self, product_id: &str) -> impl Future<Output = Result<Option<Product>, StoreError>> + Send;
    /// Applies `changes` to a product of `seller_id`; [`StoreError::NotFound`] for anyone else's.
    fn update(
        &self,
        product_id: &str,
        seller_id: &str,
        changes: &ProductChanges,
    ) -> impl Future<Output = Result<Product, StoreError>> + Send;
    /// Newest first; all products, or one category's.
    fn list(
        &self,
        category: Option<&str>,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Product>, StoreError>> + Send;
    /// The products of `ids` that exist.
    fn lookup(&self, ids: &[String]) -> impl Future<Output = Result<Vec<Product>, StoreError>> + Send;
    /// Takes the units of every line, all or none; the same `reservation_id` again returns
    /// the reservation made the first time, if it still holds ([`StoreError::Released`] if not).
    fn reserve(
        &self,
        reservation_id: &str,
        lines: &[Line],
    ) -> impl Future<Output = Result<Reservation, StoreError>> + Send;
    /// Gives a held reservation's units back; releasing twice gives them back once. An id
    /// not reserved yet is released all the same (a tombstone), so a late reserve with it
    /// takes nothing. `None` only if the id cannot be a reservation's.
    /// `committed` also gives back the units of a committed reservation (its order was
    /// cancelled); checkout's undo never does, as its order may exist.
    fn release(
        &self,
        reservation_id: &str,
        committed: bool,
    ) -> impl Future<Output = Result<Option<Reservation>, StoreError>> + Send;
    /// Makes a held reservation final (its order was placed); `None` if there is none.
    fn commit(&self, reservation_id: &str) -> impl Future<Output = Result<Option<Reservation>, StoreError>> + Send;
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    products: Mutex<HashMap<String, Product>>,
    reservations: Mutex<HashMap<String, Reservation>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl CatalogueStore for MemoryStore {
    async fn create(&self, product: &Product) -> Result<(), StoreError> {
        lock(&self.products).insert(product.product_id.clone(), product.clone());
        Ok(())
    }

    async fn get(&self, product_id: &str) -> Result<Option<Product>, StoreError> {
        Ok(lock(&self.products).get(product_id).cloned())
    }

    async fn update(&self, product_id: &str, seller_id: &str, changes: &ProductChanges) -> Result<Product, StoreError> {
        let mut products = lock(&self.products);
        let product = products.get_mut(product_id).filter(|p| p.seller_id == seller_id).ok_or(StoreError::NotFound)?;
        *product = changes.apply(product, Utc::now())?;
        Ok(product.clone())
    }

    async fn list(&self, category: Option<&str>, page: &PageRequest) -> Result<Page<Product>, StoreError> {
        let mut products: Vec<Product> =
            lock(&self.products).values().filter(|p| category.is_none_or(|c| p.category == c)).cloned().collect();
        products.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.product_id.cmp(&a.product_id)));
        let skip = page.start.as_ref().and_then(|s| s.get("offset")?.as_s().ok()?.parse().ok()).unwrap_or(0usize);
        let items: Vec<Product> = products.iter().skip(skip).take(page.limit as usize).cloned().collect();
        let next = skip + items.len();
        let next_cursor = (next < products.len()).then(|| {
            let key =
                HashMap::from([("offset".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(next.to_string()))]);
            shared::pagination::encode_cursor(&key)
        });
        Ok(Page { items, next_cursor })
    }

    async fn lookup(&self, ids: &[String]) -> Result<Vec<Product>, StoreError> {
        let products = lock(&self.products);
        Ok(ids.iter().filter_map(|id| products.get(id).cloned()).collect())
    }

    async fn reserve(&self, reservation_id: &str, lines: &[Line]) -> Result<Reservation, StoreError> {
        let mut reservations = lock(&self.reservations);
        if let Some(existing) = reservations.get(reservation_id) {
            return if existing.status == ReservationStatus::Released {
                Err(StoreError::Released)
            } else {
                Ok(existing.clone())
            };
        }
        let mut products = lock(&self.products);
        let shortages: Vec<Shortage> = lines
            .iter()
            .filter_map(|line| {
                let available = products.get(&line.product_id).map_or(0, |p| p.stock);
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
