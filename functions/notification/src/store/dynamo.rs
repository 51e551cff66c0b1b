//! Notifications, contacts and preferences in the Notification table (pk/sk):
//! `USER#{id}` / `CONTACT` (from `user.registered`, or looked up from Auth),
//! `USER#{id}` / `PREFERENCES` (`PUT /notifications/preferences`),
//! `USER#{id}` / `DEVICE#{device_id}` (its SNS platform endpoint) with
//! `DEVICE#{device_id}` / `OWNER` (whose it is: one user at a time),
//! `EMAIL#{address}` / `SUPPRESSED` (SES feedback: no more email to it) and
//! `USER#{id}` / `NOTIF#{notification_id}` (ULIDs: newest last), its `deliveries` a map by
//! route that each attempt moves with a conditional update.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use shared::dynamo::{Item, PageError, Partition, Table, error, item, key};
use shared::pagination::{Page, PageRequest};

use super::{NotificationStore, StoreError};
use crate::domain::{Contact, Delivery, Device, MAX_DEVICES, Notification, Preferences, Route, Suppression};

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

fn device_key(user_id: &str, device_id: &str) -> Item {
    key(user(user_id), format!("DEVICE#{device_id}"))
}

fn owner_key(device_id: &str) -> Item {
    key(format!("DEVICE#{device_id}"), "OWNER")
}

/// Whose a device is.
#[derive(Serialize, Deserialize)]
struct Owner {
    user_id: String,
}

fn built<T>(built: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StoreError> {
    built.map_err(|e| StoreError::Unavailable(error(e)))
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

    async fn devices(&self, user_id: &str) -> Result<Vec<Device>, StoreError> {
        let partition = Partition {
            index: None,
            attribute: "pk",
            value: user(user_id),
            sort_attribute: "sk",
            sort_prefix: Some("DEVICE#"),
        };
        // One page holds them all: registration stops at MAX_DEVICES.
        let page = PageRequest { limit: MAX_DEVICES as i32 * 2, start: None };
        let mut devices = match self.table.page::<Device>(partition, &page).await {
            Ok(found) => found.items,
            Err(PageError::Dynamo(e)) => return Err(e.into()),
            Err(PageError::ForeignCursor) => return Err(StoreError::BadCursor),
        };
        devices.sort_by_key(|d| d.created_at);
        Ok(devices)
    }

    async fn register_device(&self, user_id: &str, device: &Device) -> Result<bool, StoreError> {
        let previous: Option<Owner> = self.table.get(owner_key(&device.device_id)).await?;
        let owner = Owner { user_id: user_id.to_owned() };
        let mut claim =
            Put::builder().table_name(&self.table.name).set_item(Some(item(owner_key(&device.device_id), &owner)?));
        claim = match &previous {
            None => claim.condition_expression("attribute_not_exists(pk)"),
            Some(previous) => claim
                .condition_expression("user_id = :previous")
                .expression_attribute_values(":previous", AttributeValue::S(previous.user_id.clone())),
        };
        let stored = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item(device_key(user_id, &device.device_id), device)?));
        let mut writes = vec![
            TransactWriteItem::builder().put(built(claim.build())?).build(),
            TransactWriteItem::builder().put(built(stored.build())?).build(),
        ];
        // Taken from the one who had it: their notifications no longer go to this phone.
        if let Some(previous) = previous.filter(|p| p.user_id != user_id) {
            let taken = Delete::builder()
                .table_name(&self.table.name)
                .set_key(Some(device_key(&previous.user_id, &device.device_id)));
            writes.push(TransactWriteItem::builder().delete(built(taken.build())?).build());
        }
        Ok(self.table.transact(writes).await?)
    }

    async fn remove_device(&self, user_id: &str, device: &Device) -> Result<bool, StoreError> {
        let theirs = Delete::builder()
            .table_name(&self.table.name)
            .set_key(Some(device_key(user_id, &device.device_id)))
            .condition_expression("endpoint_arn = :arn")
            .expression_attribute_values(":arn", AttributeValue::S(device.endpoint_arn.clone()));
        let owner = Delete::builder()
            .table_name(&self.table.name)
            .set_key(Some(owner_key(&device.device_id)))
            .condition_expression("user_id = :user")
            .expression_attribute_values(":user", AttributeValue::S(user_id.to_owned()));
        let writes = vec![
            TransactWriteItem::builder().delete(built(theirs.build())?).build(),
            TransactWriteItem::builder().delete(built(owner.build())?).build(),
        ];
        Ok(self.table.transact(writes).await?)
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
        route: &Route,
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
            .expression_attribute_names("#c", String::from(route.clone()))
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
