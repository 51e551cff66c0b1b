//! Notifications and contacts in the Notification table (pk/sk):
//! `USER#{id}` / `CONTACT` (from `user.registered`, or looked up from Auth) and
//! `USER#{id}` / `NOTIF#{notification_id}` (ULIDs: newest last).

use shared::dynamo::{Item, PageError, Partition, Table, key};
use shared::pagination::{Page, PageRequest};

use super::{NotificationStore, StoreError};
use crate::domain::{Contact, Notification};

#[derive(Debug, Clone)]
pub struct DynamoStore {
    table: Table,
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

fn notification_key(notification: &Notification) -> Item {
    key(format!("USER#{}", notification.user_id), format!("NOTIF#{}", notification.notification_id))
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
        Ok(self.table.put(key(format!("USER#{}", contact.user_id), "CONTACT"), contact).await?)
    }

    async fn contact(&self, user_id: &str) -> Result<Option<Contact>, StoreError> {
        Ok(self.table.get(key(format!("USER#{user_id}"), "CONTACT")).await?)
    }

    async fn save(&self, notification: &Notification) -> Result<bool, StoreError> {
        let stored = Stored { notification: notification.clone(), user: notification.user_id.clone() };
        Ok(self.table.put_new(notification_key(notification), &stored).await?)
    }

    async fn remove(&self, notification: &Notification) -> Result<(), StoreError> {
        Ok(self.table.delete(notification_key(notification)).await?)
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
            PageError::Dynamo(e) => e.into(),
        })?;
        Ok(found.map(|s| Notification { user_id: s.user, ..s.notification }))
    }
}
