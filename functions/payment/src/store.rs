//! The port the Payment handlers keep payments through; [`dynamo::DynamoStore`] on AWS,
//! [`MemoryStore`] in tests.

pub mod dynamo;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::outbox::{MemoryOutbox, Outbox};

use crate::domain::{GatewayRef, Payment, PaymentStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the payment store is unavailable: {0}")]
    Unavailable(String),
}

/// What became of an idempotency key. Each carries the fingerprint of the request that
/// claimed the key (`AuthorizeRequest::fingerprint`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum KeyOutcome {
    /// Claimed at `since` (epoch seconds) for `payment_id`; the gateway has not answered yet,
    /// or its answer was lost. Whoever finds it resumes it: the gateway call's key is the
    /// payment id's, so asking again is the same authorization.
    Pending {
        since: i64,
        payment_id: String,
        fingerprint: String,
    },
    Authorized {
        payment_id: String,
        fingerprint: String,
    },
    Declined {
        reason: String,
        fingerprint: String,
    },
}

impl KeyOutcome {
    pub fn fingerprint(&self) -> &str {
        match self {
            Self::Pending { fingerprint, .. }
            | Self::Authorized { fingerprint, .. }
            | Self::Declined { fingerprint, .. } => fingerprint,
        }
    }
}

/// A payment and what the gateway calls it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPayment {
    #[serde(flatten)]
    pub payment: Payment,
    pub gateway_ref: GatewayRef,
    /// The sandbox token, for settlement.
    pub token: String,
}

pub trait PaymentStore: Send + Sync {
    /// Where the events this store writes with its changes wait to be published.
    type Outbox: Outbox;
    fn outbox(&self) -> &Self::Outbox;
    /// Claims `key` with `claim` (a `Pending`): `None` if the key was new and is ours now,
    /// or what became of it before.
    fn claim_key(
        &self,
        key: &str,
        claim: &KeyOutcome,
    ) -> impl Future<Output = Result<Option<KeyOutcome>, StoreError>> + Send;
    /// Records the key's outcome, and the new payment if there is one, in one write, if the
    /// key is still `claimed` (and the payment new); `false` if another request recorded first.
    fn settle_key(
        &self,
        key: &str,
        claimed: &KeyOutcome,
        outcome: &KeyOutcome,
        payment: Option<&StoredPayment>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Forgets a key still `claimed` (the token was not valid: nothing was authorized).
    fn drop_key(&self, key: &str, claimed: &KeyOutcome) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(&self, payment_id: &str) -> impl Future<Output = Result<Option<StoredPayment>, StoreError>> + Send;
    /// Moves a payment from `from` to `to`; `false` if it was not in `from`.
    fn transition(
        &self,
        payment_id: &str,
        from: PaymentStatus,
        to: PaymentStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The same, with the event that reports it written in the same transaction.
    fn transition_with(
        &self,
        payment_id: &str,
        from: PaymentStatus,
        to: PaymentStatus,
        event: &Envelope,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    keys: Mutex<HashMap<String, KeyOutcome>>,
    payments: Mutex<HashMap<String, StoredPayment>>,
    pub outbox: MemoryOutbox,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl PaymentStore for MemoryStore {
    type Outbox = MemoryOutbox;

    fn outbox(&self) -> &MemoryOutbox {
        &self.outbox
    }

    async fn claim_key(&self, key: &str, claim: &KeyOutcome) -> Result<Option<KeyOutcome>, StoreError> {
        let mut keys = lock(&self.keys);
        if let Some(existing) = keys.get(key) {
            return Ok(Some(existing.clone()));
        }
        keys.insert(key.to_owned(), claim.clone());
        Ok(None)
    }

    async fn settle_key(
        &self,
        key: &str,
        claimed: &KeyOutcome,
        outcome: &KeyOutcome,
        payment: Option<&StoredPayment>,
    ) -> Result<bool, StoreError> {
        let mut keys = lock(&self.keys);
        let mut payments = lock(&self.payments);
        let payment_is_new = payment.is_none_or(|p| !payments.contains_key(&p.payment.payment_id));
        if keys.get(key) != Some(claimed) || !payment_is_new {
            return Ok(false);
        }
        if let Some(payment) = payment {
            payments.insert(payment.payment.payment_id.clone(), payment.clone());
        }
        keys.insert(key.to_owned(), outcome.clone());
        Ok(true)
    }

    async fn drop_key(&self, key: &str, claimed: &KeyOutcome) -> Result<(), StoreError> {
        let mut keys = lock(&self.keys);
        if keys.get(key) == Some(claimed) {
            keys.remove(key);
        }
        Ok(())
    }

    async fn get(&self, payment_id: &str) -> Result<Option<StoredPayment>, StoreError> {
        Ok(lock(&self.payments).get(payment_id).cloned())
    }

    async fn transition(&self, payment_id: &str, from: PaymentStatus, to: PaymentStatus) -> Result<bool, StoreError> {
        let mut payments = lock(&self.payments);
        match payments.get_mut(payment_id) {
            Some(stored) if stored.payment.status == from => {
                stored.payment.status = to;
                stored.payment.updated_at = chrono::Utc::now();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn transition_with(
        &self,
        payment_id: &str,
        from: PaymentStatus,
        to: PaymentStatus,
        event: &Envelope,
    ) -> Result<bool, StoreError> {
        let moved = self.transition(payment_id, from, to).await?;
        if moved {
            self.outbox.add(event);
        }
        Ok(moved)
    }
}
