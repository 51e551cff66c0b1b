//! What Payment calls outside itself: the payment provider, behind the [`PaymentGateway`]
//! port. The functions use [`stripe::StripeGateway`] (Stripe's API, or localstripe on the
//! local stack); tests use a double of the port.

pub mod stripe;

use std::future::Future;

use serde::{Deserialize, Serialize};

/// What the gateway knows a payment by (Stripe: the PaymentIntent id); never shown to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayRef(pub String);

/// What an authorization asks of the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub payment_id: &'a str,
    pub order_id: &'a str,
    pub token: &'a str,
    pub amount_cents: u64,
    pub currency: &'a str,
    /// The claim was found pending: an earlier attempt may have reached the provider (its
    /// answer lost), so the provider's record of this payment is looked for before a new one
    /// is made. A fresh payment id has none, so a first attempt skips the look-up.
    pub resumed: bool,
}

/// Why the gateway did not authorize.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the payment token is not valid")]
    InvalidToken,
    /// The provider's decline code (Stripe's `decline_code`, or its `code`), e.g.
    /// `generic_decline`, `insufficient_funds`: it is stored with the key and shown as the
    /// problem's `decline_code`.
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
        ask: &Authorization<'_>,
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

/// The double of the port that payment's own unit tests use: the test tokens of docs/api.md
/// (`tok_visa` and `tok_mastercard` authorize, `tok_chargeDeclined` is declined,
/// `tok_settlementFails` authorizes and its capture is refused; any other token is invalid).
/// Its references derive from the key, so an authorization asked again is the same one.
#[cfg(test)]
pub(crate) struct Fake;

#[cfg(test)]
impl PaymentGateway for Fake {
    async fn authorize(&self, key: &str, ask: &Authorization<'_>) -> Result<Result<GatewayRef, Refusal>, GatewayDown> {
        Ok(match ask.token {
            "tok_visa" | "tok_mastercard" | "tok_settlementFails" => Ok(GatewayRef(format!("pi_fake:{key}"))),
            "tok_chargeDeclined" => Err(Refusal::Declined("generic_decline".into())),
            _ => Err(Refusal::InvalidToken),
        })
    }

    async fn void(&self, _: &str, _: &GatewayRef) -> Result<(), GatewayDown> {
        Ok(())
    }

    async fn settle(&self, _: &str, _: &GatewayRef, token: &str) -> Result<Result<(), String>, GatewayDown> {
        Ok(if token == "tok_settlementFails" { Err("charge_expired_for_capture".into()) } else { Ok(()) })
    }

    async fn refund(&self, _: &str, _: &GatewayRef, _: u64) -> Result<(), GatewayDown> {
        Ok(())
    }
}
