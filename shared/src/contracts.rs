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
    /// How many items the stock is spread over (1 to 32; left out when 1): a seller raises it
    /// for a product expected to sell faster than one item takes writes (docs/capacity.md).
    #[serde(default = "one_shard", skip_serializing_if = "is_one_shard")]
    pub stock_shards: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn one_shard() -> u32 {
    1
}

fn is_one_shard(shards: &u32) -> bool {
    *shards == 1
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
    /// Where the order goes (the checkout's `shipping_address`): each shipment's `ship_to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
}

/// A checkout's `shipping_address` and a shipment's `ship_to` (docs/api.md, Cart). Checkout
/// (400 to the customer) and the Order service (400 to its caller) hold it to the same rules,
/// [`ShippingAddress::checked`], so the rule lives with the shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingAddress {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// The longest each field of a [`ShippingAddress`] may be, in characters (infra/openapi.yaml).
pub const ADDRESS_LIMITS: [(&str, usize); 5] =
    [("name", 100), ("line1", 200), ("line2", 200), ("city", 100), ("postal_code", 20)];

impl ShippingAddress {
    /// The address with its lines trimmed, or why it is not one: a line that is empty or
    /// blank (`line2` too, when given: leave it out instead) or longer than [`ADDRESS_LIMITS`]
    /// (as sent, as the OpenAPI schema's `maxLength` counts), a country that is not an upper
    /// case ISO 3166-1 alpha-2 code (the schema's `enum`, [`country_codes`]).
    pub fn checked(self) -> Result<Self, crate::Invalid> {
        fn line(field: &str, value: &str) -> Result<String, crate::Invalid> {
            let limit = ADDRESS_LIMITS.iter().find(|(name, _)| *name == field).map_or(0, |(_, limit)| *limit);
            if value.chars().count() > limit {
                return Err(crate::Invalid(format!("shipping_address.{field} is longer than {limit} characters")));
            }
            let value = crate::http::trim_blank(value);
            if value.is_empty() {
                return Err(crate::Invalid(format!("shipping_address.{field} must not be empty")));
            }
            Ok(value.to_owned())
        }
        if !is_country_code(&self.country) {
            return Err(crate::Invalid("shipping_address.country must be an ISO 3166-1 alpha-2 code, like US".into()));
        }
        Ok(Self {
            name: line("name", &self.name)?,
            line1: line("line1", &self.line1)?,
            line2: self.line2.as_deref().map(|l| line("line2", l)).transpose()?,
            city: line("city", &self.city)?,
            postal_code: line("postal_code", &self.postal_code)?,
            country: self.country,
        })
    }
}

/// Whether `code` is an ISO 3166-1 alpha-2 code as the standard writes it (upper case): the
/// 249 assigned ones and `XK` (Kosovo: user-assigned, and used by carriers and Stripe).
pub fn is_country_code(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) && celes::Country::from_alpha2(code).is_ok()
}

/// Every ISO 3166-1 alpha-2 code, sorted: the OpenAPI schema's `enum` of `country`.
pub fn country_codes() -> Vec<String> {
    let mut codes: Vec<String> = celes::Country::get_countries().iter().map(|c| c.alpha2.to_owned()).collect();
    codes.sort();
    codes.dedup();
    codes
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
        assert_eq!(order.shipping_address, None, "an address is optional");
    }

    fn address() -> ShippingAddress {
        ShippingAddress {
            name: " Ada Lovelace ".into(),
            line1: "12 St James's Square".into(),
            line2: None,
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country: "GB".into(),
        }
    }

    #[test]
    fn an_address_is_trimmed_and_its_country_an_iso_code() {
        let checked = address().checked().unwrap();
        assert_eq!((checked.name.as_str(), checked.country.as_str()), ("Ada Lovelace", "GB"));
        assert_eq!(country_codes().len(), 250, "ISO 3166-1's 249 and XK");
        assert!(is_country_code("XK"), "Kosovo's user-assigned code, which carriers and Stripe take");
        assert!(country_codes().iter().all(|c| is_country_code(c)));
        for country in ["XX", "GBR", "", "U1", "ÜS", "UK", "gb"] {
            let wrong = ShippingAddress { country: country.into(), ..address() };
            assert!(wrong.checked().is_err(), "{country:?} is no ISO 3166-1 alpha-2 code");
        }
        for (field, limit) in ADDRESS_LIMITS {
            let set = |value: &str| {
                let mut a = serde_json::to_value(address()).unwrap();
                a[field] = value.into();
                serde_json::from_value::<ShippingAddress>(a).unwrap().checked()
            };
            assert!(set(&"é".repeat(limit)).is_ok(), "{field}: {limit} characters are fine");
            assert!(set(&"é".repeat(limit + 1)).is_err(), "{field}: longer than {limit}");
            assert!(set("   ").is_err(), "{field}: blank");
            assert!(set("").is_err(), "{field}: empty");
        }
    }
}
