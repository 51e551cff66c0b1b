//! Payments: what an authorization request is, a payment's states, and the gateway port
//! that a real provider implements beside the built-in sandbox. Pure rules: no AWS, no HTTP.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const CURRENCY: &str = "USD";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Authorized,
    Settled,
    Failed,
    Refunded,
    Voided,
}

/// A payment as the API shows it.
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

/// A payment provider. The domain only ever talks to this.
pub trait PaymentGateway: Send + Sync {
    fn authorize(&self, token: &str, amount_cents: u64) -> Result<Result<GatewayRef, Refusal>, GatewayDown>;
    fn void(&self, reference: &GatewayRef) -> Result<(), GatewayDown>;
    /// Captures an authorization; `Ok(Err(reason))` if the provider refuses to.
    fn settle(&self, reference: &GatewayRef, token: &str) -> Result<Result<(), String>, GatewayDown>;
    fn refund(&self, reference: &GatewayRef, amount_cents: u64) -> Result<(), GatewayDown>;
}

/// The built-in sandbox of api.md: `tok_visa` and `tok_mastercard` authorize,
/// `tok_chargeDeclined` is declined, `tok_settlementFails` authorizes (and fails to settle
/// later); any other token is invalid.
#[derive(Debug, Default, Clone)]
pub struct SandboxGateway;

impl PaymentGateway for SandboxGateway {
    fn authorize(&self, token: &str, _amount_cents: u64) -> Result<Result<GatewayRef, Refusal>, GatewayDown> {
        Ok(match token {
            "tok_visa" | "tok_mastercard" | "tok_settlementFails" => {
                Ok(GatewayRef(format!("sandbox:{token}:{}", ulid::Ulid::generate())))
            }
            "tok_chargeDeclined" => Err(Refusal::Declined("insufficient funds".into())),
            _ => Err(Refusal::InvalidToken),
        })
    }

    fn void(&self, _reference: &GatewayRef) -> Result<(), GatewayDown> {
        Ok(())
    }

    fn settle(&self, _reference: &GatewayRef, token: &str) -> Result<Result<(), String>, GatewayDown> {
        Ok(if token == "tok_settlementFails" { Err("the issuer refused the capture".into()) } else { Ok(()) })
    }

    fn refund(&self, _reference: &GatewayRef, _amount_cents: u64) -> Result<(), GatewayDown> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_follows_api_md() {
        let gateway = SandboxGateway;
        for token in ["tok_visa", "tok_mastercard", "tok_settlementFails"] {
            assert!(gateway.authorize(token, 100).unwrap().is_ok(), "{token}");
        }
        assert!(matches!(gateway.authorize("tok_chargeDeclined", 100).unwrap(), Err(Refusal::Declined(_))));
        assert_eq!(gateway.authorize("tok_unknown", 100).unwrap(), Err(Refusal::InvalidToken));
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
