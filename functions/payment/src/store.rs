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

/// How long a claimed key may stay pending before another request may take it over:
/// longer than the authorize function's timeout.
pub const PENDING_FOR: i64 = 30;

/// What became of an idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum KeyOutcome {
    /// Claimed at `since` (epoch seconds); the gateway has not answered yet.
    Pending {
        since: i64,
    },
    Authorized {
        payment_id: String,
    },
    Declined {
        reason: String,
    },
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
    /// Claims `key`: `None` if it is new (now pending), or what became of it before. A claim
    /// pending longer than [`PENDING_FOR`] (its holder died) is taken over.
    fn claim_key(&self, key: &str) -> impl Future<Output = Result<Option<KeyOutcome>, StoreError>> + Send;
    /// Records the key's outcome, and the payment if there is one, in one write.
    fn settle_key(
        &self,
        key: &str,
        outcome: &KeyOutcome,
        payment: Option<&StoredPayment>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets a pending key (the gateway could not be reached), so a retry tries again.
    fn drop_key(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
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

    async fn claim_key(&self, key: &str) -> Result<Option<KeyOutcome>, StoreError> {
        let mut keys = lock(&self.keys);
        let now = chrono::Utc::now().timestamp();
        match keys.get(key) {
            Some(KeyOutcome::Pending { since }) if now - since > PENDING_FOR => {}
            Some(existing) => return Ok(Some(existing.clone())),
            None => {}
        }
        keys.insert(key.to_owned(), KeyOutcome::Pending { since: now });
        Ok(None)
    }

    async fn settle_key(
        &self,
        key: &str,
        outcome: &KeyOutcome,
        payment: Option<&StoredPayment>,
    ) -> Result<(), StoreError> {
        if let Some(payment) = payment {
            lock(&self.payments).insert(payment.payment.payment_id.clone(), payment.clone());
        }
        lock(&self.keys).insert(key.to_owned(), outcome.clone());
        Ok(())
    }

    async fn drop_key(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.keys).remove(key);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pending_claim_is_taken_over_only_when_stale() {
        let store = MemoryStore::default();
        assert_eq!(store.claim_key("k").await.unwrap(), None);
        assert!(matches!(store.claim_key("k").await.unwrap(), Some(KeyOutcome::Pending { .. })), "live: wait for it");
        lock(&store.keys)
            .insert("k".into(), KeyOutcome::Pending { since: chrono::Utc::now().timestamp() - PENDING_FOR - 1 });
        assert_eq!(store.claim_key("k").await.unwrap(), None, "stale: ours now");
    }
}
