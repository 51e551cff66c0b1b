//! The internal routes (docs/api.md, Internal routes): each one's path and body types,
//! written once and used by the service that answers it and by every service that calls
//! it, so a field renamed on one side no longer compiles on the other. Only shapes live
//! here, and the calls more than one service makes ([`lookup_products`], [`user`]), so each
//! has one home; the answering service keeps its rules (validation, fingerprints) in its
//! domain.

use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::CorrelationId;
use crate::events::Role;
use crate::internal::{CallError, InternalClient};

fn usd() -> String {
    crate::CURRENCY.to_owned()
}

/// `GET /internal/users/{user_id}` (Auth): a user as other services see one.
pub fn user_path(user_id: &str) -> String {
    format!("/internal/users/{user_id}")
}

/// The answer of [`user_path`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// Calls [`user_path`]: the user, or `None` if Auth has none with the id.
pub async fn user(
    client: &InternalClient,
    correlation_id: &CorrelationId,
    user_id: &str,
) -> Result<Option<User>, CallError> {
    let answer = client.call("auth", Method::GET, &user_path(user_id), None::<&()>, true, correlation_id).await?;
    match answer.status {
        StatusCode::OK => answer.json("auth").map(Some),
        StatusCode::NOT_FOUND => Ok(None),
        _ => Err(answer.unexpected("auth")),
    }
}

/// `POST /internal/products/lookup` (Seller): names, prices and stock for carts, in one call.
pub const LOOKUP_PRODUCTS: &str = "/internal/products/lookup";

/// The body of [`LOOKUP_PRODUCTS`]: at most 100 ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductLookup {
    pub product_ids: Vec<String>,
}

/// The answer of [`LOOKUP_PRODUCTS`] (and a page of `GET /products`): those that exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Products {
    pub items: Vec<Product>,
}

/// Calls [`LOOKUP_PRODUCTS`] (idempotent, so retried): the products of `product_ids` that
/// exist. No ids, no call.
pub async fn lookup_products(
    client: &InternalClient,
    correlation_id: &CorrelationId,
    product_ids: &[String],
) -> Result<Vec<Product>, CallError> {
    if product_ids.is_empty() {
        return Ok(Vec::new());
    }
    let lookup = ProductLookup { product_ids: product_ids.to_vec() };
    let answer = client.call("seller", Method::POST, LOOKUP_PRODUCTS, Some(&lookup), true, correlation_id).await?;
    if !answer.is_success() {
        return Err(answer.unexpected("seller"));
    }
    Ok(answer.json::<Products>("seller")?.items)
}

/// A product as the API shows it (docs/api.md, `product`); `stock` is what can still be bought.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub product_id: String,
    pub seller_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category: String,
    pub price_cents: u64,
    pub currency: String,
    pub stock: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /internal/inventory/reservations` (Seller): all lines or none.
pub const RESERVATIONS: &str = "/internal/inventory/reservations";

/// `DELETE /internal/inventory/reservations/{reservation_id}` (Seller).
pub fn reservation_path(reservation_id: &str) -> String {
    format!("{RESERVATIONS}/{reservation_id}")
}

/// The body of [`RESERVATIONS`]: the same id again is the same reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationRequest {
    pub reservation_id: String,
    pub items: Vec<ReservationLine>,
}

/// One line of a reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationLine {
    pub product_id: String,
    pub quantity: u32,
}

/// `POST /internal/payments/authorize` (Payment): idempotent on the caller's key.
pub const AUTHORIZE_PAYMENT: &str = "/internal/payments/authorize";

/// `POST /internal/payments/{payment_id}/void` (Payment).
pub fn void_path(payment_id: &str) -> String {
    format!("/internal/payments/{payment_id}/void")
}

/// The body of [`AUTHORIZE_PAYMENT`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// What a caller of [`AUTHORIZE_PAYMENT`] reads of the payment it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authorized {
    pub payment_id: String,
}

/// `POST /internal/orders` (Order): the order with the ids its checkout chose.
pub const ORDERS: &str = "/internal/orders";

/// `POST /internal/orders/{order_id}/abandon` (Order): gives an order id up for good.
pub fn abandon_path(order_id: &str) -> String {
    format!("{ORDERS}/{order_id}/abandon")
}

/// The body of [`ORDERS`]: ids the checkout chose, so a retry is the same order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOrder {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<OrderLine>,
    pub total_cents: u64,
    #[serde(default = "usd")]
    pub currency: String,
    pub payment_id: String,
    pub reservation_id: String,
}

/// One line of an order, priced when the order was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: String,
    pub seller_id: String,
    pub name: String,
    pub unit_price_cents: u64,
    pub quantity: u32,
}

/// The answer of [`abandon_path`] when no order has the id, and none ever will.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Abandoned {
    pub order_id: String,
    pub abandoned: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paths_are_the_templates_routes() {
        assert_eq!(user_path("usr_1"), "/internal/users/usr_1");
        assert_eq!(reservation_path("rsv_1"), "/internal/inventory/reservations/rsv_1");
        assert_eq!(void_path("pay_1"), "/internal/payments/pay_1/void");
        assert_eq!(abandon_path("ord_1"), "/internal/orders/ord_1/abandon");
    }

    #[test]
    fn a_request_without_a_currency_is_in_the_one_currency() {
        let order: NewOrder = serde_json::from_value(serde_json::json!({
            "order_id": "o", "user_id": "u", "items": [], "total_cents": 0,
            "payment_id": "p", "reservation_id": "r",
        }))
        .unwrap();
        assert_eq!(order.currency, "USD");
    }
}
