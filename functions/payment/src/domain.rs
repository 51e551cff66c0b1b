//! Payments: what an authorization request is, a payment's states, and the gateway port
//! that a real provider implements beside the built-in sandbox. Pure rules: no AWS, no HTTP.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const CURRENCY: &str = "USD";

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

/// What the gateway knows a payment by; never shown to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayRef(pub String);

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

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

/// Why the gateway did not authorize.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the payment token is not valid")]
    InvalidToken,
    #[error("the card was declined: {0}")]
    Declined(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the payment gateway is unavailable: {0}")]
pub struct GatewayDown(pub String);

/// A payment provider. The domain only ever talks to this. Every call carries its
/// [`gateway_key`]: a provider does a call with a key it has seen once, and answers it again.
pub trait PaymentGateway: Send + Sync {
    fn authorize(
        &self,
        key: &str,
        token: &str,
        amount_cents: u64,
    ) -> impl Future<Output = Result<Result<GatewayRef, Refusal>, GatewayDown>> + Send;
    fn void(&self, key: &str, reference: &GatewayRef) -> impl Future<Output = Result<(), GatewayDown>> + Send;
    /// Captures an authorization; `Ok(Err(reason))` if the provider refuses to.
    fn settle(
        &self,
        key: &str,
        reference: &GatewayRef,
        token: &str,
    ) -> impl Future<Output = Result<Result<(), String>, GatewayDown>> + Send;
    fn refund(
        &self,
        key: &str,
        reference: &GatewayRef,
        amount_cents: u64,
    ) -> impl Future<Output = Result<(), GatewayDown>> + Send;
}

/// The built-in sandbox of docs/api.md (Payments): `tok_visa` and `tok_mastercard` authorize,
/// `tok_chargeDeclined` is declined, `tok_settlementFails` authorizes (and fails to settle
/// later); any other token is invalid. Its references derive from the key, so an
/// authorization asked again is the same one, as with a real provider.
#[derive(Debug, Default, Clone)]
pub struct SandboxGateway;

impl PaymentGateway for SandboxGateway {
    async fn authorize(
        &self,
        key: &str,
        token: &str,
        _amount_cents: u64,
    ) -> Result<Result<GatewayRef, Refusal>, GatewayDown> {
        Ok(match token {
            "tok_visa" | "tok_mastercard" | "tok_settlementFails" => Ok(GatewayRef(format!("sandbox:{token}:{key}"))),
            "tok_chargeDeclined" => Err(Refusal::Declined("insufficient funds".into())),
            _ => Err(Refusal::InvalidToken),
        })
    }

    async fn void(&self, _key: &str, _reference: &GatewayRef) -> Result<(), GatewayDown> {
        Ok(())
    }

    async fn settle(
        &self,
        _key: &str,
        _reference: &GatewayRef,
        token: &str,
    ) -> Result<Result<(), String>, GatewayDown> {
        Ok(if token == "tok_settlementFails" { Err("the issuer refused the capture".into()) } else { Ok(()) })
    }

    async fn refund(&self, _key: &str, _reference: &GatewayRef, _amount_cents: u64) -> Result<(), GatewayDown> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sandbox_follows_api_md_and_answers_a_key_again_the_same() {
        let gateway = SandboxGateway;
        for token in ["tok_visa", "tok_mastercard", "tok_settlementFails"] {
            assert!(gateway.authorize("k", token, 100).await.unwrap().is_ok(), "{token}");
        }
        assert!(matches!(gateway.authorize("k", "tok_chargeDeclined", 100).await.unwrap(), Err(Refusal::Declined(_))));
        assert_eq!(gateway.authorize("k", "tok_unknown", 100).await.unwrap(), Err(Refusal::InvalidToken));
        let key = gateway_key("pay_1", Operation::Authorize);
        assert_eq!(key, "pay_1:authorize");
        assert_eq!(
            gateway.authorize(&key, "tok_visa", 100).await.unwrap(),
            gateway.authorize(&key, "tok_visa", 100).await.unwrap()
        );
    }

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
