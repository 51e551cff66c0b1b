//! The port the Payment handlers keep payments through; [`dynamo::DynamoStore`] on AWS,
//! [`memory::MemoryStore`] in tests.

pub mod dynamo;
pub mod memory;

use std::future::Future;

use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::dynamo::DynamoError;
use shared::outbox::Outbox;

use crate::clients::GatewayRef;
use crate::domain::{Payment, PaymentStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the payment store is unavailable: {0}")]
    Unavailable(#[from] DynamoError),
    /// What was read changed before it could be used, on every try (a payment moved by
    /// others, a key claimed and dropped meanwhile): trying again later may go through.
    #[error("the payment store is contended: {0}")]
    Contended(String),
}

/// What became of an idempotency key. Each carries the fingerprint of the request that
/// claimed the key (`domain::fingerprint`).
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
    /// The payment token as authorized; the port hands it to settle (Stripe holds the card and
    /// ignores it, the test doubles read it).
    pub token: String,
    /// Set while a move is claimed for an order's event (its settlement or cancel): the
    /// correlation id its outcome is reported under, whoever records it. A checkout's void
    /// reports nothing and leaves it unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_under: Option<String>,
}

pub trait PaymentStore: Send + Sync {
    /// The time claims are stamped and their leases measured in: the function's clock (the
    /// money-path simulation's memory store runs on its simulated one).
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
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
    /// The outcome may be another `Pending`: a claim taken over, or its lease given up.
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
    /// Claims a move: `from` to `to` as [`PaymentStore::transition`], recording whether (and
    /// under which correlation id) its outcome is to be reported.
    fn claim(
        &self,
        payment_id: &str,
        from: PaymentStatus,
        to: PaymentStatus,
        reported_under: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Moves a payment from `from` to `to`; `false` if it was not in `from`. Ends a claim's
    /// [`StoredPayment::reported_under`].
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
