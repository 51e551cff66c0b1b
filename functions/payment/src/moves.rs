//! The moves of money after an authorization — capture, void, refund — each in three
//! steps: claim it (a conditional status change: `Authorized -> Settling`, `Authorized ->
//! Voiding`, `Settled -> Refunding`), ask the gateway under the move's key, record the
//! outcome (with the event that reports it, if any). Two copies of an event, a redelivery or
//! a void racing a capture cannot both move the money: only one claim succeeds. A claim is
//! held for [`CLAIM_LEASE`]; one found older (its holder died or lost the answer) is
//! resumed: the same key makes it the same provider call. A claim made for an order's event
//! says so ([`crate::store::StoredPayment::reported_under`]), so that whoever records its outcome reports it.

use shared::events::{Event, PaymentCompleted, PaymentFailed, PaymentRefunded};
use shared::{CorrelationId, Envelope};

use crate::clients::{GatewayDown, PaymentGateway};
use crate::domain::{Operation, Payment, PaymentStatus, gateway_key};
use crate::store::{PaymentStore, StoreError};

/// How long a claimed move belongs to whoever claimed it: longer than any function that
/// moves money runs (10 s), shorter than a queue's retries last.
pub const CLAIM_LEASE: chrono::Duration = chrono::Duration::seconds(12);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Capture,
    Void,
    Refund,
}

impl Move {
    /// The state it starts from, the state that claims it, and its gateway operation.
    fn steps(self) -> (PaymentStatus, PaymentStatus, Operation) {
        match self {
            Self::Capture => (PaymentStatus::Authorized, PaymentStatus::Settling, Operation::Capture),
            Self::Void => (PaymentStatus::Authorized, PaymentStatus::Voiding, Operation::Void),
            Self::Refund => (PaymentStatus::Settled, PaymentStatus::Refunding, Operation::Refund),
        }
    }
}

/// What a move came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Settled,
    /// The provider refused the capture, for this reason.
    Failed(String),
    Voided,
    Refunded,
}

impl Outcome {
    pub fn status(&self) -> PaymentStatus {
        match self {
            Self::Settled => PaymentStatus::Settled,
            Self::Failed(_) => PaymentStatus::Failed,
            Self::Voided => PaymentStatus::Voided,
            Self::Refunded => PaymentStatus::Refunded,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("no payment {0}")]
    Missing(String),
    /// The payment is in a state this move neither starts from nor resumes.
    #[error("the payment is {0:?}")]
    Elsewhere(PaymentStatus),
    /// Claimed by someone else within its lease: try again later.
    #[error("the payment is {0:?}, claimed moments ago")]
    InProgress(PaymentStatus),
    /// Maybe done: the move stays claimed, and whoever tries it again resumes it.
    #[error(transparent)]
    Gateway(#[from] GatewayDown),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The event that reports a move's outcome.
pub fn report(payment: &Payment, outcome: &Outcome, correlation_id: &CorrelationId) -> Envelope {
    let (payment_id, order_id, user_id) =
        (payment.payment_id.clone(), payment.order_id.clone(), payment.user_id.clone());
    let event = match outcome {
        Outcome::Settled => Event::PaymentCompleted(PaymentCompleted {
            payment_id,
            order_id,
            user_id,
            amount_cents: payment.amount_cents,
        }),
        Outcome::Failed(reason) => {
            Event::PaymentFailed(PaymentFailed { payment_id, order_id, user_id, reason: reason.clone() })
        }
        Outcome::Voided | Outcome::Refunded => Event::PaymentRefunded(PaymentRefunded {
            payment_id,
            order_id,
            user_id,
            amount_cents: payment.amount_cents,
        }),
    };
    Envelope::new(event, correlation_id)
}

/// Runs `kind` on the payment. Its outcome is reported ([`report`]) if this call is for an
/// order's event (`reported_under`) or the claim it resumes was. `Some` if this call recorded
/// the outcome (with that event), `None` if another resumer of the same claim recorded it first.
pub async fn run<S: PaymentStore, G: PaymentGateway>(
    store: &S,
    gateway: &G,
    payment_id: &str,
    kind: Move,
    reported_under: Option<&CorrelationId>,
) -> Result<Option<(Outcome, Option<Envelope>)>, MoveError> {
    let (from, claimed, operation) = kind.steps();
    for _ in 0..3 {
        let stored = store.get(payment_id).await?.ok_or_else(|| MoveError::Missing(payment_id.to_owned()))?;
        let status = stored.payment.status;
        let mut reporting = reported_under.cloned();
        if status == from {
            if !store.claim(payment_id, from, claimed, reported_under.map(CorrelationId::as_str)).await? {
                continue; // moved meanwhile: look again
            }
        } else if status != claimed {
            return Err(MoveError::Elsewhere(status));
        } else if stored.payment.updated_at + CLAIM_LEASE > store.now() {
            return Err(MoveError::InProgress(status));
        } else {
            // Resuming someone's claim: reported as its claimer would have.
            reporting = stored.reported_under.as_deref().and_then(CorrelationId::parse).or(reporting);
        }
        let key = gateway_key(payment_id, operation);
        let reference = &stored.gateway_ref;
        let outcome = match kind {
            Move::Capture => match gateway.settle(&key, reference, &stored.token).await? {
                Ok(()) => Outcome::Settled,
                Err(reason) => Outcome::Failed(reason),
            },
            Move::Void => {
                gateway.void(&key, reference).await?;
                Outcome::Voided
            }
            Move::Refund => {
                gateway.refund(&key, reference, stored.payment.amount_cents).await?;
                Outcome::Refunded
            }
        };
        let event = reporting.map(|correlation_id| report(&stored.payment, &outcome, &correlation_id));
        let recorded = match &event {
            Some(event) => store.transition_with(payment_id, claimed, outcome.status(), event).await?,
            None => store.transition(payment_id, claimed, outcome.status()).await?,
        };
        return Ok(recorded.then_some((outcome, event)));
    }
    Err(MoveError::Store(StoreError::Contended(format!("payment {payment_id} keeps changing"))))
}
