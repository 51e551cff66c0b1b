//! Payments in memory, for the handler tests and the money-path simulation.

use std::collections::HashMap;
use std::sync::Mutex;

use shared::Envelope;
use shared::memory::lock;
use shared::outbox::MemoryOutbox;

use super::{KeyOutcome, PaymentStore, StoreError, StoredPayment};
use crate::domain::PaymentStatus;

#[derive(Debug, Default)]
pub struct MemoryStore {
    keys: Mutex<HashMap<String, KeyOutcome>>,
    payments: Mutex<HashMap<String, StoredPayment>>,
    pub outbox: MemoryOutbox,
    /// `None`: the system clock.
    clock: Option<TokioClock>,
}

/// Time as tokio's clock tells it (paused and advanced by the simulation), from a whole second.
#[derive(Debug)]
struct TokioClock {
    wall: chrono::DateTime<chrono::Utc>,
    at: tokio::time::Instant,
}

impl MemoryStore {
    /// A store whose time ([`PaymentStore::now`]) is tokio's clock, so that leases run out
    /// as a simulation with a paused clock advances it. Made inside the runtime. Its start is
    /// a whole second, so whole-second stamps (a key's `since`) fall the same on every run.
    pub fn on_tokio_clock() -> Self {
        let wall = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0).unwrap_or_default();
        Self { clock: Some(TokioClock { wall, at: tokio::time::Instant::now() }), ..Self::default() }
    }

    /// The id of every payment stored, sorted: what the money-path simulation checks.
    pub fn payment_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.payments).keys().cloned().collect();
        ids.sort();
        ids
    }
}

impl PaymentStore for MemoryStore {
    type Outbox = MemoryOutbox;

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        match &self.clock {
            Some(clock) => clock.wall + clock.at.elapsed(),
            None => chrono::Utc::now(),
        }
    }

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

    async fn claim(
        &self,
        payment_id: &str,
        from: PaymentStatus,
        to: PaymentStatus,
        reported_under: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut payments = lock(&self.payments);
        match payments.get_mut(payment_id) {
            Some(stored) if stored.payment.status == from => {
                stored.payment.status = to;
                stored.payment.updated_at = now;
                stored.reported_under = reported_under.map(str::to_owned);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn transition(&self, payment_id: &str, from: PaymentStatus, to: PaymentStatus) -> Result<bool, StoreError> {
        self.claim(payment_id, from, to, None).await
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

/// The sample payment (docs' ids, 7098 cents) in `status`, last changed at `changed`, known to
/// the provider as `gateway_ref`, held by a store as an authorization records it (under key "k"):
/// what the consumer's and the webhook's tests start from.
#[cfg(test)]
pub(crate) async fn holding_sample(
    status: crate::domain::PaymentStatus,
    changed: chrono::DateTime<chrono::Utc>,
    gateway_ref: &str,
    token: &str,
) -> MemoryStore {
    use crate::clients::GatewayRef;
    use crate::domain::Payment;
    // Tokio's clock: the system's unless a test pauses it to let a claim's lease run out.
    let store = MemoryStore::on_tokio_clock();
    let payment = Payment {
        payment_id: "pay_01JD4S5Q2R3S4T5V6W7X8Y9Z0A".into(),
        order_id: "ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E".into(),
        user_id: "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A".into(),
        amount_cents: 7098,
        currency: "USD".into(),
        status,
        created_at: changed,
        updated_at: changed,
    };
    let payment_id = payment.payment_id.clone();
    let stored = StoredPayment {
        payment,
        gateway_ref: GatewayRef(gateway_ref.into()),
        token: token.into(),
        reported_under: None,
    };
    let claim = KeyOutcome::Pending { since: 0, payment_id: payment_id.clone(), fingerprint: "f".into() };
    assert_eq!(store.claim_key("k", &claim).await.unwrap(), None);
    let authorized = KeyOutcome::Authorized { payment_id, fingerprint: "f".into() };
    assert!(store.settle_key("k", &claim, &authorized, Some(&stored)).await.unwrap());
    store
}
