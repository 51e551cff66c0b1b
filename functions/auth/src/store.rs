//! The port the handlers keep accounts through; [`dynamo::DynamoStore`] on AWS,
//! [`MemoryStore`] in tests.

pub mod dynamo;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::domain::{Email, FailedLogins, THROTTLE_WINDOW, User};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("the account store is unavailable: {0}")]
    Unavailable(String),
}

/// What a login needs: who the email belongs to and their password hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    pub user_id: String,
    pub password_hash: String,
}

pub trait UserStore: Send + Sync {
    /// Stores a new user; [`StoreError::EmailTaken`] if the email is, atomically.
    fn create(
        &self,
        user: &User,
        password_hash: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes a user just created (when the registration cannot be completed).
    fn remove(&self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn credentials(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<Credentials>, StoreError>> + Send;
    fn user(&self, user_id: &str) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
    fn failed_logins(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<FailedLogins>, StoreError>> + Send;
    /// Counts one more failure: in the current window, or starting a new one at `now`.
    fn record_failed_login(
        &self,
        email: &Email,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<FailedLogins, StoreError>> + Send;
    fn clear_failed_logins(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    users: Mutex<HashMap<String, User>>,
    credentials: Mutex<HashMap<Email, Credentials>>,
    failures: Mutex<HashMap<Email, FailedLogins>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl UserStore for MemoryStore {
    async fn create(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        let mut credentials = lock(&self.credentials);
        if credentials.contains_key(&user.email) {
            return Err(StoreError::EmailTaken);
        }
        let entry = Credentials {
            user_id: user.user_id.clone(),
            password_hash: password_hash.to_owned(),
        };
        credentials.insert(user.email.clone(), entry);
        lock(&self.users).insert(user.user_id.clone(), user.clone());
        Ok(())
    }

    async fn remove(&self, user: &User) -> Result<(), StoreError> {
        lock(&self.credentials).remove(&user.email);
        lock(&self.users).remove(&user.user_id);
        Ok(())
    }

    async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
        Ok(lock(&self.credentials).get(email).cloned())
    }

    async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.users).get(user_id).cloned())
    }

    async fn failed_logins(&self, email: &Email) -> Result<Option<FailedLogins>, StoreError> {
        Ok(lock(&self.failures).get(email).copied())
    }

    async fn record_failed_login(
        &self,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<FailedLogins, StoreError> {
        let mut failures = lock(&self.failures);
        let entry = failures.entry(email.clone()).or_insert(FailedLogins {
            count: 0,
            started_at: now,
        });
        if entry.started_at + THROTTLE_WINDOW <= now {
            *entry = FailedLogins {
                count: 0,
                started_at: now,
            };
        }
        entry.count += 1;
        Ok(*entry)
    }

    async fn clear_failed_logins(&self, email: &Email) -> Result<(), StoreError> {
        lock(&self.failures).remove(email);
        Ok(())
    }
}
