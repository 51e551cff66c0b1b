//! Payments: what an authorization request may be (its shape is `shared::contracts`'), a
//! payment's states, and the key each call to the gateway (`clients`) is made under. Pure
//! rules: no AWS, no HTTP.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::contracts::AuthorizeRequest;
use shared::{CURRENCY, Invalid};

/// A payment's state. Every move of money is claimed first (`Authorized -> Settling`,
/// `Authorized -> Voiding`, `Settled -> Refunding`, a conditional write), then asked of the
/// gateway under a key of our ids, then recorded; a claimed move that lost its answer is
/// resumed, with the same key, by whoever finds it claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Authorized,
    Settling,
    Settled,
    Failed,
    Refunding,
    Refunded,
    Voiding,
    Voided,
}

impl PaymentStatus {
    /// The status docs/api.md shows (Payments): a move under way is not done yet.
    pub fn shown(self) -> Self {
        match self {
            Self::Settling | Self::Voiding => Self::Authorized,
            Self::Refunding => Self::Settled,
            done => done,
        }
    }
}

/// What a gateway call does to a payment; with the payment id it makes the call's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Authorize,
    Capture,
    Void,
    Refund,
}

/// The idempotency key of one gateway call, `{payment_id}:{operation}`: the same call asked
/// again (a retry, a redelivery, a second copy of an event) is the same call to the provider.
pub fn gateway_key(payment_id: &str, operation: Operation) -> String {
    let operation = match operation {
        Operation::Authorize => "authorize",
        Operation::Capture => "capture",
        Operation::Void => "void",
        Operation::Refund => "refund",
    };
    format!("{payment_id}:{operation}")
}

/// A payment (the API shows it with [`PaymentStatus::shown`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub amount_cents: u64,
    pub currency: String,
    pub status: PaymentStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What binds the caller's key to an authorization request: the same key with another
/// request is refused, never answered with the first one's payment.
pub fn fingerprint(request: &AuthorizeRequest) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        request.order_id, request.user_id, request.amount_cents, request.currency, request.payment_token
    )
}

/// Whether an authorization request is one this service takes.
pub fn validate(request: &AuthorizeRequest) -> Result<(), Invalid> {
    if request.idempotency_key.is_empty() || request.idempotency_key.len() > 256 {
        return Err(Invalid("idempotency_key must be 1 to 256 characters".into()));
    }
    if request.amount_cents == 0 {
        return Err(Invalid("amount_cents must be at least 1".into()));
    }
    if request.currency != CURRENCY {
        return Err(Invalid(format!("only {CURRENCY} is accepted")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_under_way_show_as_the_state_they_leave() {
        assert_eq!(PaymentStatus::Settling.shown(), PaymentStatus::Authorized);
        assert_eq!(PaymentStatus::Voiding.shown(), PaymentStatus::Authorized);
        assert_eq!(PaymentStatus::Refunding.shown(), PaymentStatus::Settled);
        assert_eq!(PaymentStatus::Voided.shown(), PaymentStatus::Voided);
    }

    #[test]
    fn requests_are_checked() {
        let request = |key: &str, amount, currency: &str| AuthorizeRequest {
            idempotency_key: key.into(),
            order_id: "o".into(),
            user_id: "u".into(),
            amount_cents: amount,
            currency: currency.into(),
            payment_token: "tok_visa".into(),
        };
        assert!(validate(&request("k", 100, "USD")).is_ok());
        assert!(validate(&request("", 100, "USD")).is_err());
        assert!(validate(&request("k", 0, "USD")).is_err());
        assert!(validate(&request("k", 100, "EUR")).is_err());
    }
}
