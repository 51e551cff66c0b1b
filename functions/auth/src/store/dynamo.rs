//! Accounts in the Auth table (pk/sk, TTL on `expires_at`):
//! - `USER#{user_id}` / `PROFILE`: the user;
//! - `EMAIL#{email}` / `CREDENTIALS`: who owns the email, and the password hash. Written in
//!   one transaction with the profile, on the condition that it does not exist: that
//!   condition is what makes emails unique, with no read-then-write race;
//! - `THROTTLE#{throttle key}` / `ATTEMPTS`: recent attempts one throttle counts (failed
//!   logins per email and address, per address; registrations per address), expiring with
//!   the window;
//! - `REFRESH#{sha256 of the token}` / `TOKEN`: a refresh token (never the token itself),
//!   whether it is spent, its family; expiring after 30 days;
//! - `FAMILY#{family}` / `FAMILY`: the tokens of one login, whether revoked; expiring with
//!   its newest token. A refresh spends its token, writes the next one and checks the family
//!   in one transaction, each under a condition: two refreshes of one token have one winner;
//! - `OUTBOX` / `{event id}`: events not yet published (see `shared::outbox`).

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use shared::Envelope;
use shared::dynamo::{DynamoError, Item, Table, item, key};
use shared::outbox::DynamoOutbox;

use super::{Admission, Credentials, StoreError, UserStore};
use crate::domain::{Email, THROTTLE_WINDOW, Throttle, User, admit, forgiven};
use crate::refresh::{Family, Stored};

#[derive(Debug, Clone)]
pub struct DynamoStore {
    table: Table,
    outbox: DynamoOutbox,
}

impl DynamoStore {
    pub fn new(table: Table) -> Self {
        Self { outbox: DynamoOutbox::new(table.client.clone(), table.name.clone()), table }
    }

    /// The Auth table named by `TABLE_NAME`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self::new(Table::from_env(sdk)?))
    }
}

fn user_key(user_id: &str) -> Item {
    key(format!("USER#{user_id}"), "PROFILE")
}

fn email_key(email: &Email) -> Item {
    key(format!("EMAIL#{}", email.as_str()), "CREDENTIALS")
}

fn attempts_key(throttle: &Throttle) -> Item {
    key(format!("THROTTLE#{}", throttle.key), "ATTEMPTS")
}

fn refresh_key(hash: &str) -> Item {
    key(format!("REFRESH#{hash}"), "TOKEN")
}

fn family_key(family: &str) -> Item {
    key(format!("FAMILY#{family}"), "FAMILY")
}

#[derive(Serialize, Deserialize)]
struct CredentialsItem {
    user_id: String,
    password_hash: String,
}

#[derive(Serialize, Deserialize)]
struct AttemptsItem {
    /// Epoch seconds of recent failed attempts.
    attempts: Vec<i64>,
    expires_at: i64,
}

/// Optimistic writes of the attempts item that lose to a concurrent one, before giving up.
const ADMIT_TRIES: usize = 5;

impl DynamoStore {
    /// A throttle's attempts and the version of their item (a consistent read: the item is
    /// read-modified-written under a condition, so concurrent attempts count one by one).
    async fn attempts(&self, throttle: &Throttle) -> Result<(Vec<i64>, u64), StoreError> {
        let current = self.table.get_versioned::<AttemptsItem>(attempts_key(throttle)).await?;
        Ok(current.map(|(c, version)| (c.attempts, version)).unwrap_or_default())
    }

    /// Writes `attempts` if the item is still at `version`; `false` if it moved meanwhile.
    async fn write_attempts(&self, throttle: &Throttle, attempts: Vec<i64>, version: u64) -> Result<bool, StoreError> {
        let newest = attempts.iter().max().copied().unwrap_or_else(|| Utc::now().timestamp());
        let expires_at = newest + THROTTLE_WINDOW.num_seconds();
        Ok(self.table.put_versioned(attempts_key(throttle), &AttemptsItem { attempts, expires_at }, version).await?)
    }

    /// A transaction's put of `item`, on the condition that no item is at its key.
    fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(shared::dynamo::error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// `SET {set}` on the item at `key` if `{condition}` holds there.
    fn update(
        &self,
        key: Item,
        set: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(key))
            .update_expression(format!("SET {set}"))
            .condition_expression(condition);
        // DynamoDB refuses values an expression does not use: only these.
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(shared::dynamo::error)?).build())
    }
}

impl UserStore for DynamoStore {
    type Outbox = DynamoOutbox;

    fn outbox(&self) -> &DynamoOutbox {
        &self.outbox
    }

    async fn create(&self, user: &User, password_hash: &str, event: &Envelope) -> Result<(), StoreError> {
        let credentials = CredentialsItem { user_id: user.user_id.clone(), password_hash: password_hash.to_owned() };
        let result = self
            .table
            .client
            .transact_write_items()
            .transact_items(self.put_new(item(email_key(&user.email), &credentials)?)?)
            .transact_items(self.put_new(item(user_key(&user.user_id), user)?)?)
            .transact_items(self.outbox.entry(event).map_err(shared::dynamo::error)?)
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
                        Err(DynamoError(format!("registration cancelled: {reasons:?}")).into())
                    }
                }
                other => Err(shared::dynamo::error(other).into()),
            },
            Err(e) => Err(shared::dynamo::error(e).into()),
        }
    }

    async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
        let found: Option<CredentialsItem> = self.table.get(email_key(email)).await?;
        Ok(found.map(|c| Credentials { user_id: c.user_id, password_hash: c.password_hash }))
    }

    async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.table.get(user_key(user_id)).await?)
    }

    async fn admit(&self, throttle: &Throttle, now: DateTime<Utc>) -> Result<Admission, StoreError> {
        for _ in 0..ADMIT_TRIES {
            let (previous, version) = self.attempts(throttle).await?;
            let attempts = match admit(&previous, throttle.limit, now) {
                Ok(attempts) => attempts,
                Err(wait) => return Ok(Admission::Locked(wait)),
            };
            if self.write_attempts(throttle, attempts, version).await? {
                return Ok(Admission::Allowed);
            }
        }
        // So many concurrent attempts on one counter that none got through: an attack.
        Ok(Admission::Locked(std::time::Duration::from_secs(1)))
    }

    async fn forgive(&self, throttle: &Throttle, at: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        let Some(at) = at else { return Ok(self.table.delete(attempts_key(throttle)).await?) };
        for _ in 0..ADMIT_TRIES {
            let (previous, version) = self.attempts(throttle).await?;
            let kept = forgiven(&previous, at);
            if kept.len() == previous.len() || self.write_attempts(throttle, kept, version).await? {
                return Ok(());
            }
        }
        // Lost to concurrent attempts every time: the attempt stays counted, which only errs
        // on the side of refusing sooner.
        Ok(())
    }

    async fn start_family(&self, first: &Stored) -> Result<(), StoreError> {
        let family = Family {
            family: first.family.clone(),
            user_id: first.user_id.clone(),
            revoked: false,
            expires_at: first.expires_at,
        };
        let items = vec![
            self.put_new(item(family_key(&family.family), &family)?)?,
            self.put_new(item(refresh_key(&first.hash), first)?)?,
        ];
        match self.table.transact(items).await? {
            true => Ok(()),
            // Fresh ULIDs and 256 random bits: a clash is a bug, not a race.
            false => Err(DynamoError(format!("family {} or its first token exists already", first.family)).into()),
        }
    }

    async fn refresh_token(&self, hash: &str) -> Result<Option<Stored>, StoreError> {
        Ok(self.table.get(refresh_key(hash)).await?)
    }

    async fn family(&self, family: &str) -> Result<Option<Family>, StoreError> {
        Ok(self.table.get(family_key(family)).await?)
    }

    async fn rotate(&self, spent: &Stored, next: &Stored) -> Result<bool, StoreError> {
        let (yes, no) = ((":t", AttributeValue::Bool(true)), (":f", AttributeValue::Bool(false)));
        let expires = (":e", AttributeValue::N(next.expires_at.to_string()));
        let items = vec![
            self.update(refresh_key(&spent.hash), "spent = :t", "spent = :f", &[yes, no.clone()])?,
            self.put_new(item(refresh_key(&next.hash), next)?)?,
            self.update(family_key(&spent.family), "expires_at = :e", "revoked = :f", &[expires, no])?,
        ];
        Ok(self.table.transact(items).await?)
    }

    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        let revoke = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(family_key(family)))
            .update_expression("SET revoked = :t")
            // Never a stub family for an id that was not one.
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        match revoke {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(shared::dynamo::error(e).into()),
        }
    }
}
