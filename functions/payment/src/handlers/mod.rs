//! The Lambda edge of the Payment service: the internal (IAM) routes checkout calls
//! ([`internal`]), the owner's view of a payment ([`payments`]), and Stripe's signed
//! events ([`webhooks`]).

pub mod internal;
pub mod payments;
pub mod webhooks;

use shared::Problem;

use crate::domain::Payment;
use crate::store::StoreError;

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "payment store unavailable");
        Problem::unavailable("payments are unavailable; try again shortly")
    }
}

/// A payment as the API shows it.
fn shown(payment: &Payment) -> Payment {
    Payment { status: payment.status.shown(), ..payment.clone() }
}
