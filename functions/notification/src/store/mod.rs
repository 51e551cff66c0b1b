//! The port to the notifications and contacts: [`dynamo::DynamoStore`] for the functions,
//! [`memory::MemoryStore`] for tests.

pub mod dynamo;
pub mod memory;

use std::future::Future;

use shared::dynamo::DynamoError;
use shared::pagination::{Page, PageRequest};

use crate::domain::{Contact, Notification};

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
    /// Stores a new notification; false if one with its id is stored already.
    fn save(&self, notification: &Notification) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Takes back a notification that could not be sent.
    fn remove(&self, notification: &Notification) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A user's notifications, newest first.
    fn list(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Notification>, StoreError>> + Send;
}
