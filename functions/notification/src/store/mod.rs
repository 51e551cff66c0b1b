//! The port to the notifications, contacts and preferences: [`dynamo::DynamoStore`] for the
//! functions, [`memory::MemoryStore`] for tests.

pub mod dynamo;
pub mod memory;

use std::future::Future;

use shared::dynamo::DynamoError;
use shared::pagination::{Page, PageRequest};

use crate::domain::{Channel, Contact, Delivery, Notification, Preferences, Suppression};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the notification store is unavailable: {0}")]
    Unavailable(#[from] DynamoError),
    #[error("the cursor was not given out for this list")]
    BadCursor,
}

pub trait NotificationStore: Send + Sync {
    fn save_contact(&self, contact: &Contact) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn contact(&self, user_id: &str) -> impl Future<Output = Result<Option<Contact>, StoreError>> + Send;
    fn save_preferences(
        &self,
        user_id: &str,
        preferences: &Preferences,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The user's preferences; `None` if they never set any.
    fn preferences(&self, user_id: &str) -> impl Future<Output = Result<Option<Preferences>, StoreError>> + Send;
    fn suppress(&self, suppression: &Suppression) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whether `address` (canonical: `feedback::canonical`) is suppressed.
    fn suppressed(&self, address: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Stores a new notification; false if one with its id is stored already.
    fn save(&self, notification: &Notification) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn notification(
        &self,
        user_id: &str,
        notification_id: &str,
    ) -> impl Future<Output = Result<Option<Notification>, StoreError>> + Send;
    /// Replaces the delivery on `channel` with `to` if it is still `from` (same status, same
    /// time); false if another attempt moved it first. Claims, outcomes and releases all go
    /// through here, so two attempts never both move one delivery.
    fn move_delivery(
        &self,
        notification: &Notification,
        channel: Channel,
        from: &Delivery,
        to: &Delivery,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A user's notifications, newest first.
    fn list(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Notification>, StoreError>> + Send;
}
