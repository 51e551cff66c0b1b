//! Notifications, contacts and preferences in the Notification table (pk/sk):
//! `USER#{id}` / `CONTACT` (from `user.registered`, or looked up from Auth),
//! `USER#{id}` / `PREFERENCES` (`PUT /notifications/preferences`),
//! `EMAIL#{address}` / `SUPPRESSED` (SES feedback: no more email to it) and
//! `USER#{id}` / `NOTIF#{notification_id}` (ULIDs: newest last), its `deliveries` a map by
//! channel that each attempt moves with a conditional update.

use aws_sdk_dynamodb::types::AttributeValue;
use shared::dynamo::{Item, PageError, Partition, Table, error, key};
use shared::pagination::{Page, PageRequest};

use super::{NotificationStore, StoreError};
use crate::domain::{Channel, Contact, Delivery, Notification, Preferences, Suppression};

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

fn user(user_id: &str) -> String {
    format!("USER#{user_id}")
}

fn notification_key(user_id: &str, notification_id: &str) -> Item {
    key(user(user_id), format!("NOTIF#{notification_id}"))
}

fn value(of: &impl serde::Serialize) -> Result<AttributeValue, StoreError> {
    Ok(serde_dynamo::to_attribute_value(of).map_err(error)?)
}

impl NotificationStore for DynamoStore {
    async fn save_contact(&self, contact: &Contact) -> Result<(), StoreError> {
        Ok(self.table.put(key(user(&contact.user_id), "CONTACT"), contact).await?)
    }

    async fn contact(&self, user_id: &str) -> Result<Option<Contact>, StoreError> {
        Ok(self.table.get(key(user(user_id), "CONTACT")).await?)
    }

    async fn save_preferences(&self, user_id: &str, preferences: &Preferences) -> Result<(), StoreError> {
        Ok(self.table.put(key(user(user_id), "PREFERENCES"), preferences).await?)
    }

    async fn preferences(&self, user_id: &str) -> Result<Option<Preferences>, StoreError> {
        Ok(self.table.get(key(user(user_id), "PREFERENCES")).await?)
    }

    async fn suppress(&self, suppression: &Suppression) -> Result<(), StoreError> {
        Ok(self.table.put(key(format!("EMAIL#{}", suppression.address), "SUPPRESSED"), suppression).await?)
    }

    async fn suppressed(&self, address: &str) -> Result<bool, StoreError> {
        let found: Option<Suppression> = self.table.get(key(format!("EMAIL#{address}"), "SUPPRESSED")).await?;
        Ok(found.is_some())
    }

    async fn save(&self, notification: &Notification) -> Result<bool, StoreError> {
        let key = notification_key(&notification.user_id, &notification.notification_id);
        Ok(self.table.put_new(key, notification).await?)
    }

    async fn notification(&self, user_id: &str, notification_id: &str) -> Result<Option<Notification>, StoreError> {
        Ok(self.table.get(notification_key(user_id, notification_id)).await?)
    }

    async fn move_delivery(
        &self,
        notification: &Notification,
        channel: Channel,
        from: &Delivery,
        to: &Delivery,
    ) -> Result<bool, StoreError> {
        let update = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(notification_key(&notification.user_id, &notification.notification_id)))
            .update_expression("SET deliveries.#c = :to")
            .condition_expression("deliveries.#c.#s = :status AND deliveries.#c.#at = :at")
            .expression_attribute_names("#c", value(&channel)?.as_s().cloned().unwrap_or_default())
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":to", value(to)?)
            .expression_attribute_values(":status", value(&from.status)?)
            .expression_attribute_values(":at", value(&from.at)?);
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(error(e).into()),
        }
    }

    async fn list(&self, user_id: &str, page: &PageRequest) -> Result<Page<Notification>, StoreError> {
        let partition = Partition {
            index: None,
            attribute: "pk",
            value: user(user_id),
            sort_attribute: "sk",
            sort_prefix: Some("NOTIF#"),
        };
        self.table.page::<Notification>(partition, page).await.map_err(|e| match e {
            PageError::ForeignCursor => StoreError::BadCursor,
            PageError::Dynamo(e) => e.into(),
        })
    }
}
