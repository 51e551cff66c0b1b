//! The port the handlers keep accounts through; [`dynamo::DynamoStore`] on AWS,
//! [`MemoryStore`] in tests.

pub mod dynamo;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use shared::Envelope;
use shared::outbox::{MemoryOutbox, Outbox};

use crate::domain::{Email, User, admit};

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

/// Whether a login attempt may be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Too many recent failures: refused for this long.
    Locked(std::time::Duration),
}

/// Accounts, and the events they owe (the outbox).
pub trait UserStore: Send + Sync {
    /// Where the events this store writes with its changes wait to be published.
    type Outbox: Outbox;
    fn outbox(&self) -> &Self::Outbox;
    /// Stores a new user and the `user.registered` event in one transaction;
    /// [`StoreError::EmailTaken`] if the email is, atomically.
    fn create(
        &self,
        user: &User,
        password_hash: &str,
        event: &Envelope,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn credentials(&self, email: &Email) -> impl Future<Output = Result<Option<Credentials>, StoreError>> + Send;
    fn user(&self, user_id: &str) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
    /// Counts an attempt for `email` before its password is checked (so parallel guesses
    /// are counted too), or refuses it (see [`admit`]).
    fn admit_login(
        &self,
        email: &Email,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Admission, StoreError>> + Send;
    /// Forgets the attempts of an email after a successful login.
    fn clear_login_attempts(&self, email: &Email) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    users: Mutex<HashMap<String, User>>,
    credentials: Mutex<HashMap<Email, Credentials>>,
    attempts: Mutex<HashMap<Email, Vec<i64>>>,
    pub outbox: MemoryOutbox,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl UserStore for MemoryStore {
    type Outbox = MemoryOutbox;

    fn outbox(&self) -> &MemoryOutbox {
        &self.outbox
    }

    async fn create(&self, user: &User, password_hash: &str, event: &Envelope) -> Result<(), StoreError> {
        let mut credentials = lock(&self.credentials);
        if credentials.contains_key(&user.email) {
            return Err(StoreError::EmailTaken);
        }
        let entry = Credentials { user_id: user.user_id.clone(), password_hash: password_hash.to_owned() };
        credentials.insert(user.email.clone(), entry);
        lock(&self.users).insert(user.user_id.clone(), user.clone());
        self.outbox.add(event);
        Ok(())
    }

    async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
        Ok(lock(&self.credentials).get(email).cloned())
    }

    async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.users).get(user_id).cloned())
    }

    async fn admit_login(&self, email: &Email, now: DateTime<Utc>) -> Result<Admission, StoreError> {
        let mut attempts = lock(&self.attempts);
        let entry = attempts.entry(email.clone()).or_default();
        match admit(entry, now) {
            Ok(updated) => {
                *entry = updated;
                Ok(Admission::Allowed)
            }
            Err(wait) => Ok(Admission::Locked(wait)),
        }
    }

    async fn clear_login_attempts(&self, email: &Email) -> Result<(), StoreError> {
        lock(&self.attempts).remove(email);
        Ok(())
    }
}
