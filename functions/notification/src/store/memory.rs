//! The notifications and contacts in memory, for tests.

use std::collections::HashMap;
use std::sync::Mutex;

use shared::memory::lock;
use shared::pagination::{Page, PageRequest};

use super::{NotificationStore, StoreError};
use crate::domain::{Contact, Notification};

#[derive(Debug, Default)]
pub struct MemoryStore {
    contacts: Mutex<HashMap<String, Contact>>,
    pub notifications: Mutex<Vec<Notification>>,
}

impl NotificationStore for MemoryStore {
    async fn save_contact(&self, contact: &Contact) -> Result<(), StoreError> {
        lock(&self.contacts).insert(contact.user_id.clone(), contact.clone());
        Ok(())
    }

    async fn contact(&self, user_id: &str) -> Result<Option<Contact>, StoreError> {
        Ok(lock(&self.contacts).get(user_id).cloned())
    }

    async fn save(&self, notification: &Notification) -> Result<bool, StoreError> {
        let mut all = lock(&self.notifications);
        if all.iter().any(|n| n.notification_id == notification.notification_id) {
            return Ok(false);
        }
        all.push(notification.clone());
        Ok(true)
    }

    async fn remove(&self, notification: &Notification) -> Result<(), StoreError> {
        lock(&self.notifications).retain(|n| n.notification_id != notification.notification_id);
        Ok(())
    }

    async fn list(&self, user_id: &str, page: &PageRequest) -> Result<Page<Notification>, StoreError> {
        let all = lock(&self.notifications);
        let items = all.iter().rev().filter(|n| n.user_id == user_id).take(page.limit as usize).cloned().collect();
        Ok(Page { items, next_cursor: None })
    }
}
