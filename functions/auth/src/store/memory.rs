//! Accounts in memory, for the handler tests.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use shared::Envelope;
use shared::memory::lock;
use shared::outbox::MemoryOutbox;

use super::{Admission, Credentials, StoreError, UserStore};
use crate::domain::{Email, Throttle, User, admit, forgiven};

#[derive(Debug, Default)]
pub struct MemoryStore {
    users: Mutex<HashMap<String, User>>,
    credentials: Mutex<HashMap<Email, Credentials>>,
    attempts: Mutex<HashMap<Throttle, Vec<i64>>>,
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

    async fn admit(&self, throttle: &Throttle, now: DateTime<Utc>) -> Result<Admission, StoreError> {
        let mut attempts = lock(&self.attempts);
        let entry = attempts.entry(throttle.clone()).or_default();
        match admit(entry, throttle.limit, now) {
            Ok(updated) => {
                *entry = updated;
                Ok(Admission::Allowed)
            }
            Err(wait) => Ok(Admission::Locked(wait)),
        }
    }

    async fn forgive(&self, throttle: &Throttle, at: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        let mut attempts = lock(&self.attempts);
        match at {
            None => drop(attempts.remove(throttle)),
            Some(at) => {
                if let Some(entry) = attempts.get_mut(throttle) {
                    *entry = forgiven(entry, at);
                }
            }
        }
        Ok(())
    }
}
