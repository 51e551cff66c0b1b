//! The services a cart depends on, as one port: the catalogue (Seller), payments, stock
//! (Seller) and orders. [`HttpDownstream`] calls their internal routes through
//! `shared::internal` (SigV4, timeouts, retries, circuit breakers); tests use a fake.

use std::future::Future;

use lambda_http::http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use shared::internal::{CallError, InternalClient};
use shared::{CorrelationId, Problem};

use crate::domain::{CartLine, ProductInfo};

/// What the payment service said.
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    Authorized {
        payment_id: String,
    },
    /// Declined (402) or not a valid token (400): the customer's answer, as the service gave it.
    Refused(Problem),
    /// Authorized under this key before, and voided, failed or refunded since: nothing held.
    Over,
}

/// What giving an order id up found.
#[derive(Debug, Clone, PartialEq)]
pub enum Abandoned {
    /// No order has the id, and none ever will.
    Abandoned,
    /// The order exists (as the API shows orders): its checkout went through.
    Exists(Value),
}

/// What the stock said.
#[derive(Debug, Clone, PartialEq)]
pub enum Stock {
    Reserved,
    /// Not enough: the 409 with `shortages`, as the service gave it.
    Short(Problem),
}

/// The authorization a checkout asks for.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentRequest {
    pub idempotency_key: String,
    pub order_id: String,
    pub user_id: String,
    pub amount_cents: u64,
    pub currency: &'static str,
    pub payment_token: String,
}

pub trait Downstream: Send + Sync {
    fn lookup(
        &self,
        ids: &[String],
        cid: &CorrelationId,
    ) -> impl Future<Output = Result<Vec<ProductInfo>, CallError>> + Send;
    fn authorize(
        &self,
        request: &PaymentRequest,
        cid: &CorrelationId,
    ) -> impl Future<Output = Result<Authorization, CallError>> + Send;
    fn void(&self, payment_id: &str, cid: &CorrelationId) -> impl Future<Output = Result<(), CallError>> + Send;
    fn reserve(
        &self,
        reservation_id: &str,
        lines: &[CartLine],
        cid: &CorrelationId,
    ) -> impl Future<Output = Result<Stock, CallError>> + Send;
    fn release(&self, reservation_id: &str, cid: &CorrelationId) -> impl Future<Output = Result<(), CallError>> + Send;
    /// Creates the order (idempotent on its id) and answers it as the API shows orders.
    fn create_order(&self, order: &Value, cid: &CorrelationId)
    -> impl Future<Output = Result<Value, CallError>> + Send;
    /// Gives an order id up for good, unless its order exists.
    fn abandon_order(
        &self,
        order_id: &str,
        cid: &CorrelationId,
    ) -> impl Future<Output = Result<Abandoned, CallError>> + Send;
}

pub struct HttpDownstream {
    pub client: InternalClient,
}

fn unexpected(service: &str, answer: &shared::internal::Answer) -> CallError {
    CallError::Unexpected {
        service: service.to_owned(),
        status: answer.status.as_u16(),
        body: String::from_utf8_lossy(&answer.body).into_owned(),
    }
}

/// A 4xx answer that is the customer's to see, kept as the problem it is.
fn problem(service: &str, answer: &shared::internal::Answer) -> Result<Problem, CallError> {
    let body: Value = answer.json(service)?;
    Problem::from_json(&body).ok_or_else(|| unexpected(service, answer))
}

impl Downstream for HttpDownstream {
    async fn lookup(&self, ids: &[String], cid: &CorrelationId) -> Result<Vec<ProductInfo>, CallError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let answer = self
            .client
            .call("seller", Method::POST, "/internal/products/lookup", Some(&json!({"product_ids": ids})), true, cid)
            .await?;
        if !answer.is_success() {
            return Err(unexpected("seller", &answer));
        }
        let found: Value = answer.json("seller")?;
        serde_json::from_value(found["items"].clone()).map_err(|e| CallError::Unexpected {
            service: "seller".into(),
            status: 200,
            body: e.to_string(),
        })
    }

    async fn authorize(&self, request: &PaymentRequest, cid: &CorrelationId) -> Result<Authorization, CallError> {
        // Idempotent on its key, so it may be retried.
        let answer =
            self.client.call("payment", Method::POST, "/internal/payments/authorize", Some(request), true, cid).await?;
        match answer.status {
            StatusCode::CREATED | StatusCode::OK => {
                let payment: Value = answer.json("payment")?;
                let payment_id =
                    payment["payment_id"].as_str().ok_or_else(|| unexpected("payment", &answer))?.to_owned();
                Ok(Authorization::Authorized { payment_id })
            }
            StatusCode::PAYMENT_REQUIRED | StatusCode::BAD_REQUEST => {
                Ok(Authorization::Refused(problem("payment", &answer)?))
            }
            StatusCode::CONFLICT if problem("payment", &answer)?.kind.ends_with("payment-not-live") => {
                Ok(Authorization::Over)
            }
            // Another 409: an authorization with this key is still in progress elsewhere.
            _ => Err(unexpected("payment", &answer)),
        }
    }

    async fn void(&self, payment_id: &str, cid: &CorrelationId) -> Result<(), CallError> {
        let answer = self
            .client
            .call("payment", Method::POST, &format!("/internal/payments/{payment_id}/void"), None::<&()>, true, cid)
            .await?;
        if answer.is_success() { Ok(()) } else { Err(unexpected("payment", &answer)) }
    }

    async fn reserve(&self, reservation_id: &str, lines: &[CartLine], cid: &CorrelationId) -> Result<Stock, CallError> {
        let body = json!({"reservation_id": reservation_id, "items": lines});
        let answer = self
            .client
            .call("seller", Method::POST, "/internal/inventory/reservations", Some(&body), true, cid)
            .await?;
        match answer.status {
            StatusCode::CREATED | StatusCode::OK => Ok(Stock::Reserved),
            StatusCode::CONFLICT => {
                let short = problem("seller", &answer)?;
                if short.extensions.contains_key("shortages") {
                    Ok(Stock::Short(short))
                } else {
                    Err(unexpected("seller", &answer))
                }
            }
            _ => Err(unexpected("seller", &answer)),
        }
    }

    async fn release(&self, reservation_id: &str, cid: &CorrelationId) -> Result<(), CallError> {
        let path = format!("/internal/inventory/reservations/{reservation_id}");
        let answer = self.client.call("seller", Method::DELETE, &path, None::<&()>, true, cid).await?;
        // 404: never made, so nothing to give back.
        if answer.is_success() || answer.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(unexpected("seller", &answer))
        }
    }

    async fn create_order(&self, order: &Value, cid: &CorrelationId) -> Result<Value, CallError> {
        let answer = self.client.call("order", Method::POST, "/internal/orders", Some(order), true, cid).await?;
        if answer.is_success() { answer.json("order") } else { Err(unexpected("order", &answer)) }
    }

    async fn abandon_order(&self, order_id: &str, cid: &CorrelationId) -> Result<Abandoned, CallError> {
        let path = format!("/internal/orders/{order_id}/abandon");
        let answer = self.client.call("order", Method::POST, &path, None::<&()>, true, cid).await?;
        match answer.status {
            StatusCode::OK => Ok(Abandoned::Abandoned),
            StatusCode::CONFLICT => {
                let exists = problem("order", &answer)?;
                match exists.extensions.get("order") {
                    Some(order) if exists.kind.ends_with("order-exists") => Ok(Abandoned::Exists(order.clone())),
                    _ => Err(unexpected("order", &answer)),
                }
            }
            _ => Err(unexpected("order", &answer)),
        }
    }
}
