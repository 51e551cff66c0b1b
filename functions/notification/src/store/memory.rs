//! The notifications, contacts and preferences in memory, for tests.

use std::collections::HashMap;
use std::sync::Mutex;

use shared::memory::lock;
use shared::pagination::{Page, PageRequest};

use super::{NotificationStore, StoreError};
use crate::domain::{Contact, Delivery, Device, Notification, Preferences, Route, Suppression};

#[derive(Debug, Default)]
pub struct MemoryStore {
    contacts: Mutex<HashMap<String, Contact>>,
    preferences: Mutex<HashMap<String, Preferences>>,
    suppressed: Mutex<HashMap<String, Suppression>>,
    /// Each device with its owner, oldest first.
    pub devices: Mutex<Vec<(String, Device)>>,
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

    async fn save_preferences(&self, user_id: &str, preferences: &Preferences) -> Result<(), StoreError> {
        lock(&self.preferences).insert(user_id.to_owned(), preferences.clone());
        Ok(())
    }

    async fn preferences(&self, user_id: &str) -> Result<Option<Preferences>, StoreError> {
        Ok(lock(&self.preferences).get(user_id).cloned())
    }

    async fn devices(&self, user_id: &str) -> Result<Vec<Device>, StoreError> {
        Ok(lock(&self.devices).iter().filter(|(owner, _)| owner == user_id).map(|(_, d)| d.clone()).collect())
    }

    async fn register_device(&self, user_id: &str, device: &Device) -> Result<bool, StoreError> {
        let mut devices = lock(&self.devices);
        devices.retain(|(_, d)| d.device_id != device.device_id);
        devices.push((user_id.to_owned(), device.clone()));
        Ok(true)
    }

    async fn remove_device(&self, user_id: &str, device: &Device) -> Result<bool, StoreError> {
        let mut devices = lock(&self.devices);
        let before = devices.len();
        devices.retain(|(owner, d)| !(owner == user_id && d == device));
        Ok(devices.len() < before)
    }

    async fn suppress(&self, suppression: &Suppression) -> Result<(), StoreError> {
        lock(&self.suppressed).insert(suppression.address.clone(), suppression.clone());
        Ok(())
    }

    async fn suppressed(&self, address: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.suppressed).contains_key(address))
    }

    async fn save(&self, notification: &Notification) -> Result<bool, StoreError> {
        let mut all = lock(&self.notifications);
        if all.iter().any(|n| n.notification_id == notification.notification_id) {
            return Ok(false);
        }
        all.push(notification.clone());
        Ok(true)
    }

    async fn notification(&self, user_id: &str, notification_id: &str) -> Result<Option<Notification>, StoreError> {
        let all = lock(&self.notifications);
        Ok(all.iter().find(|n| n.user_id == user_id && n.notification_id == notification_id).cloned())
    }

    async fn move_delivery(
        &self,
        notification: &Notification,
        route: &Route,
        from: &Delivery,
        to: &Delivery,
    ) -> Result<bool, StoreError> {
        let mut all = lock(&self.notifications);
        let stored = all.iter_mut().find(|n| n.notification_id == notification.notification_id);
        let Some(delivery) = stored.and_then(|n| n.deliveries.get_mut(route)) else { return Ok(false) };
        if (delivery.status, delivery.at) != (from.status, from.at) {
            return Ok(false);
        }
        *delivery = to.clone();
        Ok(true)
    }

    async fn list(&self, user_id: &str, page: &PageRequest) -> Result<Page<Notification>, StoreError> {
        let all = lock(&self.notifications);
        let items = all.iter().rev().filter(|n| n.user_id == user_id).take(page.limit as usize).cloned().collect();
        Ok(Page { items, next_cursor: None })
    }
}
