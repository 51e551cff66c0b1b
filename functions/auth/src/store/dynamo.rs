//! Accounts in the Auth table (pk/sk, TTL on `expires_at`):
//! - `USER#{user_id}` / `PROFILE`: the user;
//! - `EMAIL#{email}` / `CREDENTIALS`: who owns the email, and the password hash. Written in
//!   one transaction with the profile, on the condition that it does not exist: that
//!   condition is what makes emails unique, with no read-then-write race;
//! - `LOGINFAIL#{email}` / `WINDOW`: failed logins in the current window, expiring with it.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Credentials, StoreError, UserStore};
use crate::domain::{Email, FailedLogins, THROTTLE_WINDOW, User};

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The Auth table named by `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(
            Client::new(sdk),
            shared::config::required("TABLE_NAME")?,
        ))
    }
}

type Item = HashMap<String, AttributeValue>;

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

fn user_key(user_id: &str) -> Item {
    key(format!("USER#{user_id}"), "PROFILE")
}

fn email_key(email: &Email) -> Item {
    key(format!("EMAIL#{}", email.as_str()), "CREDENTIALS")
}

fn failures_key(email: &Email) -> Item {
    key(format!("LOGINFAIL#{}", email.as_str()), "WINDOW")
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(error: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}

/// `key` plus the fields of `value`.
fn item(key: Item, value: &impl Serialize) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(unavailable)?;
    item.extend(key);
    Ok(item)
}

#[derive(Serialize, Deserialize)]
struct CredentialsItem {
    user_id: String,
    password_hash: String,
}

#[derive(Serialize, Deserialize)]
struct FailuresItem {
    count: u32,
    /// Epoch seconds, so that the window condition compares numbers.
    #[serde(with = "chrono::serde::ts_seconds")]
    started_at: DateTime<Utc>,
    expires_at: i64,
}

impl DynamoStore {
    async fn get<T: for<'de> Deserialize<'de>>(&self, key: Item) -> Result<Option<T>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(unavailable)?;
        found
            .item
            .map(|item| serde_dynamo::from_item(item).map_err(unavailable))
            .transpose()
    }

    async fn delete(&self, key: Item) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

impl UserStore for DynamoStore {
    async fn create(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        let credentials = CredentialsItem {
            user_id: user.user_id.clone(),
            password_hash: password_hash.to_owned(),
        };
        let put = |item: Item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build())
                .map_err(unavailable)
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(put(item(email_key(&user.email), &credentials)?)?)
            .transact_items(put(item(user_key(&user.user_id), user)?)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let reasons = cancelled.cancellation_reasons();
                    if reasons.first().and_then(|r| r.code()) == Some("ConditionalCheckFailed") {
                        Err(StoreError::EmailTaken)
                    } else {
                        Err(StoreError::Unavailable(format!(
                            "registration cancelled: {reasons:?}"
                        )))
                    }
                }
                other => Err(unavailable(other)),
            },
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn remove(&self, user: &User) -> Result<(), StoreError> {
        self.delete(email_key(&user.email)).await?;
        self.delete(user_key(&user.user_id)).await
    }

    async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
        let found: Option<CredentialsItem> = self.get(email_key(email)).await?;
        Ok(found.map(|c| Credentials {
            user_id: c.user_id,
            password_hash: c.password_hash,
        }))
    }

    async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        self.get(user_key(user_id)).await
    }

    async fn failed_logins(&self, email: &Email) -> Result<Option<FailedLogins>, StoreError> {
        let found: Option<FailuresItem> = self.get(failures_key(email)).await?;
        Ok(found.map(|f| FailedLogins {
            count: f.count,
            started_at: f.started_at,
        }))
    }

    async fn record_failed_login(
        &self,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<FailedLogins, StoreError> {
        // Count in the current window if there is one...
        let window_start_after = (now - THROTTLE_WINDOW).timestamp().to_string();
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(failures_key(email)))
            .update_expression("ADD #count :one")
            .condition_expression("attribute_exists(pk) AND started_at > :cutoff")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":cutoff", AttributeValue::N(window_start_after))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match counted {
            Ok(output) => {
                let item: FailuresItem =
                    serde_dynamo::from_item(output.attributes.unwrap_or_default())
                        .map_err(unavailable)?;
                Ok(FailedLogins {
                    count: item.count,
                    started_at: item.started_at,
                })
            }
            // ...or start a new one.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let failures = FailuresItem {
                    count: 1,
                    started_at: now,
                    expires_at: (now + THROTTLE_WINDOW).timestamp(),
                };
                let new = item(failures_key(email), &failures)?;
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(new))
                    .send()
                    .await
                    .map_err(unavailable)?;
                Ok(FailedLogins {
                    count: 1,
                    started_at: now,
                })
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn clear_failed_logins(&self, email: &Email) -> Result<(), StoreError> {
        self.delete(failures_key(email)).await
    }
}
