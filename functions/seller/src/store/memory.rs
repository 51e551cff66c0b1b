//! The catalogue and its stock in memory, for the handler tests and the money-path
//! simulation.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::Utc;
use shared::contracts::{Product, ReservationLine};
use shared::memory::lock;
use shared::pagination::{Page, PageRequest};

use super::{CatalogueStore, StoreError};
use crate::domain::{ProductChanges, Reservation, ReservationStatus, Shortage};

#[derive(Debug, Default)]
pub struct MemoryStore {
    products: Mutex<HashMap<String, Product>>,
    reservations: Mutex<HashMap<String, Reservation>>,
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
