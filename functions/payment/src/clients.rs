//! What Payment calls outside itself: the payment provider, behind the [`PaymentGateway`]
//! port, which a real provider implements beside the built-in [`SandboxGateway`].

use std::future::Future;

use serde::{Deserialize, Serialize};

/// What the gateway knows a payment by; never shown to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayRef(pub String);

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

/// A payment provider: the handlers and `moves` only ever talk to this. Every call carries
/// its [`gateway_key`](crate::domain::gateway_key): a provider does a call with a key it has
/// seen once, and answers it again.
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
    use crate::domain::{Operation, gateway_key};

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
}
