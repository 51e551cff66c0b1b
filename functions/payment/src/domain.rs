//! Payments: what an authorization request is, a payment's states, and the key each call
//! to the gateway (`clients`) is made under. Pure rules: no AWS, no HTTP.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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

/// `POST /internal/payments/authorize`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizeRequest {
    /// The caller's key: the same key always gets the same answer and one authorization.
    pub idempotency_key: String,
    pub order_id: String,
    pub user_id: String,
    pub amount_cents: u64,
    #[serde(default = "usd")]
    pub currency: String,
    pub payment_token: String,
}

fn usd() -> String {
    CURRENCY.to_owned()
}

impl AuthorizeRequest {
    /// What binds the caller's key to this request: the same key with another request is
    /// refused, never answered with the first one's payment.
    pub fn fingerprint(&self) -> String {
        format!("{}|{}|{}|{}|{}", self.order_id, self.user_id, self.amount_cents, self.currency, self.payment_token)
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if self.idempotency_key.is_empty() || self.idempotency_key.len() > 256 {
            return Err(Invalid("idempotency_key must be 1 to 256 characters".into()));
        }
        if self.amount_cents == 0 {
            return Err(Invalid("amount_cents must be at least 1".into()));
        }
        if self.currency != CURRENCY {
            return Err(Invalid(format!("only {CURRENCY} is accepted")));
        }
        Ok(())
    }
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
        assert!(request("k", 100, "USD").validate().is_ok());
        assert!(request("", 100, "USD").validate().is_err());
        assert!(request("k", 0, "USD").validate().is_err());
        assert!(request("k", 100, "EUR").validate().is_err());
    }
}
