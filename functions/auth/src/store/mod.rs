//! The port the handlers keep accounts through; [`dynamo::DynamoStore`] on AWS,
//! [`memory::MemoryStore`] in tests.

pub mod dynamo;
pub mod memory;

use std::future::Future;

use chrono::{DateTime, Utc};
use shared::Envelope;
use shared::dynamo::DynamoError;
use shared::outbox::Outbox;

use crate::domain::{Email, Throttle, User};
use crate::refresh::{Family, Stored};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("the account store is unavailable: {0}")]
    Unavailable(#[from] DynamoError),
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
    /// Counts an attempt at `now` against `throttle` before the work it guards (so parallel
    /// attempts are counted too), or refuses it (see [`crate::domain::admit`]).
    fn admit(
        &self,
        throttle: &Throttle,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Admission, StoreError>> + Send;
    /// Takes back the attempt counted at `at` (it succeeded, so it was no failure), or all
    /// of them (`None`).
    fn forgive(
        &self,
        throttle: &Throttle,
        at: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores the first refresh token of a new family (a login), with the family.
    fn start_family(&self, first: &Stored) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The refresh token whose hash is `hash`.
    fn refresh_token(&self, hash: &str) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send;
    fn family(&self, family: &str) -> impl Future<Output = Result<Option<Family>, StoreError>> + Send;
    /// In one transaction: spends `spent` if it is still unspent, and stores `next` in its
    /// family if the family is not revoked. `false` if either had moved (a concurrent refresh
    /// spent it first, or the family was revoked): then nothing is written.
    fn rotate(&self, spent: &Stored, next: &Stored) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Revokes the family: none of its tokens refreshes again.
    fn revoke_family(&self, family: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}
