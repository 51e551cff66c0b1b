//! The port the Seller handlers keep the catalogue and stock through; [`dynamo::DynamoStore`]
//! on AWS, [`memory::MemoryStore`] in tests.

pub mod dynamo;
pub mod memory;

use std::future::Future;

use shared::Invalid;
use shared::contracts::{Product, ReservationLine};
use shared::dynamo::DynamoError;
use shared::pagination::{Page, PageRequest};

use crate::domain::{ProductChanges, Reservation, Shortage};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such product")]
    NotFound,
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("not enough stock")]
    Shortages(Vec<Shortage>),
    #[error("the product changed concurrently; try again")]
    Conflict,
    /// The reservation id was released (or released before it was made): it holds nothing
    /// and never will; a new reservation needs a new id.
    #[error("the reservation was released")]
    Released,
    #[error("the catalogue is unavailable: {0}")]
    Unavailable(#[from] DynamoError),
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
        lines: &[ReservationLine],
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
