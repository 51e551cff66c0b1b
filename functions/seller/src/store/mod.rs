//! The ports the Seller handlers keep the catalogue and stock ([`CatalogueStore`]) and the
//! sellers' profiles ([`SellerStore`]) through; [`dynamo::DynamoStore`] on AWS,
//! [`memory::MemoryStore`] in tests.

pub mod dynamo;
pub mod memory;

use std::future::Future;

use shared::contracts::{Product, ReservationLine};
use shared::dynamo::DynamoError;
use shared::outbox::Outbox;
use shared::pagination::{Page, PageRequest};
use shared::{CorrelationId, Envelope, Invalid};

use crate::domain::{ProductChanges, Reservation, Seller, SellerStatus, Shortage};

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

/// Products on sale are those not deleted whose seller is not suspended (docs/api.md): the
/// catalogue's reads ([`CatalogueStore::get`], [`CatalogueStore::list`],
/// [`CatalogueStore::lookup`]) see only those, and a reservation takes units only of those.
/// Whether a seller's products are on sale is read from the seller's profile when a product is
/// read, so a suspension and an approval take all of a seller's products away or back in one
/// write. A product with no seller profile (made before profiles existed) is on sale.
pub trait CatalogueStore: Send + Sync {
    fn create(&self, product: &Product) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(&self, product_id: &str) -> impl Future<Output = Result<Option<Product>, StoreError>> + Send;
    /// Takes a product of `seller_id` out of the catalogue for good (a conditional write: its
    /// units are sold no more, placed orders keep their lines); [`StoreError::NotFound`] for
    /// anyone else's, an unknown or a deleted one.
    fn delete(&self, product_id: &str, seller_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Applies `changes` to a product of `seller_id`; [`StoreError::NotFound`] for anyone
    /// else's or a deleted one.
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
    /// The products of `ids` that are on sale.
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

/// What moving a seller to a status did.
#[derive(Debug, Clone, PartialEq)]
pub enum Moved {
    /// No such seller.
    Unknown,
    /// The seller was in that status already: nothing written.
    Unchanged(Seller),
    /// Written, conditionally on the profile being as it was read, with the event that reports
    /// it in the outbox (the same transaction): the caller delivers it.
    Changed(Seller, Vec<Envelope>),
}

/// Sellers' profiles, and the events their changes owe (the outbox).
pub trait SellerStore: Send + Sync {
    type Outbox: Outbox;
    fn outbox(&self) -> &Self::Outbox;
    /// Stores a new profile; `false` (nothing written) if the seller has one already.
    fn create_seller(&self, seller: &Seller) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn seller(&self, seller_id: &str) -> impl Future<Output = Result<Option<Seller>, StoreError>> + Send;
    /// Newest first; all sellers, or those in `status`.
    fn sellers(
        &self,
        status: Option<SellerStatus>,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Seller>, StoreError>> + Send;
    /// Moves a seller to `to` (a suspension with its reason), unless it is there already; the
    /// move and its event (`seller.approved` / `seller.suspended`) are written together.
    fn move_seller(
        &self,
        seller_id: &str,
        to: SellerStatus,
        reason: Option<&str>,
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<Moved, StoreError>> + Send;
}
