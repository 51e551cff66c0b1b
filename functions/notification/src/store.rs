//! Notifications and contacts in the Notification table (pk/sk):
//! `USER#{id}` / `CONTACT` (from `user.registered`, or looked up from Auth) and
//! `USER#{id}` / `NOTIF#{notification_id}` (ULIDs: newest last). [`MemoryStore`] for tests.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use shared::dynamo::{PageError, Partition, Table, key};
use shared::pagination::{Page, PageRequest};

use crate::domain::{Contact, Notification};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the notification store is unavailable: {0}")]
    Unavailable(String),
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

#[derive(Debug, Default)]
pub struct MemoryStore {
    contacts: Mutex<HashMap<String, Contact>>,
    pub notifications: Mutex<Vec<Notification>>,
}

impl NotificationStore for MemoryStore {
    async fn save_contact(&self, contact: &Contact) -> Result<(), StoreError> {
        self.contacts.lock().unwrap_or_else(|e| e.into_inner()).insert(contact.user_id.clone(), contact.clone());
        Ok(())
    }

    async fn contact(&self, user_id: &str) -> Result<Option<Contact>, StoreError> {
        Ok(self.contacts.lock().unwrap_or_else(|e| e.into_inner()).get(user_id).cloned())
    }

    async fn save(&self, notification: &Notification) -> Result<bool, StoreError> {
        let mut all = self.notifications.lock().unwrap_or_else(|e| e.into_inner());
        if all.iter().any(|n| n.notification_id == notification.notification_id) {
            return Ok(false);
        }
        all.push(notification.clone());
        Ok(true)
    }

    async fn remove(&self, notification: &Notification) -> Result<(), StoreError> {
        self.notifications
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|n| n.notification_id != notification.notification_id);
        Ok(())
    }

    async fn list(&self, user_id: &str, page: &PageRequest) -> Result<Page<Notification>, StoreError> {
        let all = self.notifications.lock().unwrap_or_else(|e| e.into_inner());
        let items = all.iter().rev().filter(|n| n.user_id == user_id).take(page.limit as usize).cloned().collect();
        Ok(Page { items, next_cursor: None })
    }
}

#[derive(Debug, Clone)]
pub struct DynamoStore {
    table: Table,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

impl DynamoStore {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    /// The Notification table named by `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(Table::from_env(sdk)?))
    }

    pub fn table(&self) -> &Table {
        &self.table
    }
}

/// A stored notification keeps its user (the API view does not show it).
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(flatten)]
    notification: Notification,
    user: String,
}

impl NotificationStore for DynamoStore {
    async fn save_contact(&self, contact: &Contact) -> Result<(), StoreError> {
        self.table.put(key(format!("USER#{}", contact.user_id), "CONTACT"), contact).await.map_err(unavailable)
    }

    async fn contact(&self, user_id: &str) -> Result<Option<Contact>, StoreError> {
        self.table.get(key(format!("USER#{user_id}"), "CONTACT")).await.map_err(unavailable)
    }

    async fn save(&self, notification: &Notification) -> Result<bool, StoreError> {
        let stored = Stored { notification: notification.clone(), user: notification.user_id.clone() };
        let at = key(format!("USER#{}", notification.user_id), format!("NOTIF#{}", notification.notification_id));
        self.table.put_new(at, &stored).await.map_err(unavailable)
    }

    async fn remove(&self, notification: &Notification) -> Result<(), StoreError> {
        let at = key(format!("USER#{}", notification.user_id), format!("NOTIF#{}", notification.notification_id));
        self.table.delete(at).await.map_err(unavailable)
    }

    async fn list(&self, user_id: &str, page: &PageRequest) -> Result<Page<Notification>, StoreError> {
        let partition = Partition {
            index: None,
            attribute: "pk",
            value: format!("USER#{user_id}"),
            sort_attribute: "sk",
            sort_prefix: Some("NOTIF#"),
        };
        let found = self.table.page::<Stored>(partition, page).await.map_err(|e| match e {
            PageError::ForeignCursor => StoreError::BadCursor,
            e => unavailable(e),
        })?;
        Ok(found.map(|s| Notification { user_id: s.user, ..s.notification }))
    }
}
