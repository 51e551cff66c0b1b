//! Accounts in memory, for the handler tests.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use shared::Envelope;
use shared::memory::lock;
use shared::outbox::MemoryOutbox;

use super::{Admission, Credentials, StoreError, UserStore};
use crate::domain::{Email, User, admit};

#[derive(Debug, Default)]
pub struct MemoryStore {
    users: Mutex<HashMap<String, User>>,
    credentials: Mutex<HashMap<Email, Credentials>>,
    attempts: Mutex<HashMap<Email, Vec<i64>>>,
    pub outbox: MemoryOutbox,
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
