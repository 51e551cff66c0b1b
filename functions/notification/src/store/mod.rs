//! The port to the notifications, contacts and preferences: [`dynamo::DynamoStore`] for the
//! functions, [`memory::MemoryStore`] for tests.

pub mod dynamo;
pub mod memory;

use std::future::Future;

use shared::dynamo::DynamoError;
use shared::pagination::{Page, PageRequest};

use crate::domain::{Contact, Delivery, Device, Notification, Preferences, Route, Suppression};

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
    /// The user's devices, oldest first.
    fn devices(&self, user_id: &str) -> impl Future<Output = Result<Vec<Device>, StoreError>> + Send;
    /// Makes `device` the user's, and no one else's: a token names one phone, and whoever
    /// registered it last gets its notifications. False if another registration of the same
    /// device moved it meanwhile (a conditional write: nothing changed).
    fn register_device(&self, user_id: &str, device: &Device) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Removes the user's `device` if it is still theirs on the same endpoint; false if not.
    fn remove_device(&self, user_id: &str, device: &Device) -> impl Future<Output = Result<bool, StoreError>> + Send;
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
    /// Replaces the delivery on `route` with `to` if it is still `from` (same status, same
    /// time); false if another attempt moved it first. Claims, outcomes and releases all go
    /// through here, so two attempts never both move one delivery.
    fn move_delivery(
        &self,
        notification: &Notification,
        route: &Route,
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
