//! Accounts in memory, for the handler tests.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use shared::Envelope;
use shared::memory::lock;
use shared::outbox::MemoryOutbox;

use super::{Admission, Credentials, StoreError, UserStore};
use crate::domain::{Email, Throttle, User, admit, forgiven};
use crate::refresh::{Family, Stored};

#[derive(Debug, Default)]
pub struct MemoryStore {
    users: Mutex<HashMap<String, User>>,
    credentials: Mutex<HashMap<Email, Credentials>>,
    attempts: Mutex<HashMap<Throttle, Vec<i64>>>,
    /// Refresh tokens by hash, and their families; one lock, as one transaction.
    sessions: Mutex<(HashMap<String, Stored>, HashMap<String, Family>)>,
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

    async fn start_family(&self, first: &Stored) -> Result<(), StoreError> {
        let mut sessions = lock(&self.sessions);
        let family = Family {
            family: first.family.clone(),
            user_id: first.user_id.clone(),
            revoked: false,
            expires_at: first.expires_at,
        };
        sessions.1.insert(first.family.clone(), family);
        sessions.0.insert(first.hash.clone(), first.clone());
        Ok(())
    }

    async fn refresh_token(&self, hash: &str) -> Result<Option<Stored>, StoreError> {
        Ok(lock(&self.sessions).0.get(hash).cloned())
    }

    async fn family(&self, family: &str) -> Result<Option<Family>, StoreError> {
        Ok(lock(&self.sessions).1.get(family).cloned())
    }

    async fn rotate(&self, spent: &Stored, next: &Stored) -> Result<bool, StoreError> {
        let mut sessions = lock(&self.sessions);
        let (tokens, families) = &mut *sessions;
        let live = tokens.get(&spent.hash).is_some_and(|t| !t.spent);
        let Some(family) = families.get_mut(&spent.family).filter(|f| !f.revoked && live) else {
            return Ok(false);
        };
        family.expires_at = next.expires_at;
        tokens.get_mut(&spent.hash).expect("checked").spent = true;
        tokens.insert(next.hash.clone(), next.clone());
        Ok(true)
    }

    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        if let Some(family) = lock(&self.sessions).1.get_mut(family) {
            family.revoked = true;
        }
        Ok(())
    }
}
