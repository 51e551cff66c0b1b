//! Carts and checkout: what a cart holds, how it is priced from the catalogue (never from
//! the client), and the ids one checkout attempt uses. Pure rules: no AWS, no HTTP.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::contracts::{OrderLine, Product, ReservationLine, ReservationRequest, ShippingAddress};
use shared::{CURRENCY, Invalid};

pub const MAX_QUANTITY: u32 = 99;
/// Distinct products in a cart: one checkout reserves them in one transaction.
pub const MAX_LINES: usize = 50;

/// One line as stored: what, how many, and the catalogue's price when it was put in the
/// cart (docs/api.md, Cart: checkout compares it with the catalogue; never the client's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub product_id: String,
    pub quantity: u32,
    /// `None` for lines stored before prices were kept: the catalogue's price then holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price_cents: Option<u64>,
}

impl CartLine {
    pub fn new(product_id: &str, quantity: u32) -> Self {
        Self { product_id: product_id.to_owned(), quantity, unit_price_cents: None }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Cart {
    pub user_id: String,
    pub items: Vec<CartLine>,
    /// The key of the checkout that emptied this cart, until the cart changes again: a
    /// repeated checkout of it (a double click, a retry without a key) is that checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_out: Option<String>,
}

/// `PUT /cart/items/{product_id}`.
#[derive(Debug, Deserialize)]
pub struct SetQuantity {
    pub quantity: i64,
}

impl Cart {
    pub fn empty(user_id: &str) -> Self {
        Self { user_id: user_id.to_owned(), items: Vec::new(), checked_out: None }
    }

    /// Sets a product's quantity (0 removes it) at the catalogue's `price` of now.
    pub fn set(&mut self, product_id: &str, quantity: i64, price: Option<u64>) -> Result<(), Invalid> {
        self.checked_out = None;
        let quantity = u32::try_from(quantity)
            .ok()
            .filter(|q| *q <= MAX_QUANTITY)
            .ok_or_else(|| Invalid(format!("quantity must be from 0 to {MAX_QUANTITY}")))?;
        let full = self.items.len() >= MAX_LINES;
        match (self.items.iter_mut().find(|l| l.product_id == product_id), quantity) {
            (Some(_), 0) => self.remove(product_id),
            (Some(line), _) => {
                line.quantity = quantity;
                line.unit_price_cents = price;
            }
            (None, 0) => {}
            (None, _) if full => return Err(Invalid(format!("a cart holds at most {MAX_LINES} different products"))),
            (None, _) => {
                self.items.push(CartLine { product_id: product_id.to_owned(), quantity, unit_price_cents: price })
            }
        }
        Ok(())
    }

    pub fn remove(&mut self, product_id: &str) {
        self.checked_out = None;
        self.items.retain(|l| l.product_id != product_id);
    }

    /// What is left after checkout `key` bought `bought` (lines changed meanwhile keep the rest).
    pub fn without(&self, bought: &[CartLine], key: &str) -> Cart {
        let mut left = self.clone();
        left.checked_out = Some(key.to_owned());
        for line in bought {
            if let Some(current) = left.items.iter_mut().find(|l| l.product_id == line.product_id) {
                current.quantity = current.quantity.saturating_sub(line.quantity);
            }
        }
        left.items.retain(|l| l.quantity > 0);
        left
    }
}

/// A priced line (docs/api.md, Cart: `cart.items`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricedLine {
    pub product_id: String,
    pub name: String,
    pub unit_price_cents: u64,
    pub quantity: u32,
    pub line_total_cents: u64,
    #[serde(skip)]
    pub seller_id: String,
}

/// The cart as the API shows it (docs/api.md, Cart: `cart`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PricedCart {
    pub user_id: String,
    pub items: Vec<PricedLine>,
    pub total_cents: u64,
    pub currency: &'static str,
}

/// Prices `cart`: each line at the price it was put in at (the catalogue's for old lines),
/// names from the catalogue; products that no longer exist are left out.
pub fn price(cart: &Cart, catalogue: &[Product]) -> PricedCart {
    let by_id: HashMap<&str, &Product> = catalogue.iter().map(|p| (p.product_id.as_str(), p)).collect();
    let items: Vec<PricedLine> = cart
        .items
        .iter()
        .filter_map(|line| {
            let product = by_id.get(line.product_id.as_str())?;
            let unit_price_cents = line.unit_price_cents.unwrap_or(product.price_cents);
            Some(PricedLine {
                product_id: line.product_id.clone(),
                name: product.name.clone(),
                unit_price_cents,
                quantity: line.quantity,
                line_total_cents: unit_price_cents * u64::from(line.quantity),
                seller_id: product.seller_id.clone(),
            })
        })
        .collect();
    PricedCart {
        user_id: cart.user_id.clone(),
        total_cents: items.iter().map(|l| l.line_total_cents).sum(),
        items,
        currency: CURRENCY,
    }
}

/// A line whose catalogue price is not the one it was put in the cart at (docs/api.md,
/// Checkout: `/problems/price-changed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceChange {
    pub product_id: String,
    pub old_unit_price_cents: u64,
    pub new_unit_price_cents: u64,
}

/// The lines of `cart` the catalogue now prices differently, and the cart at the new prices.
pub fn price_changes(cart: &Cart, catalogue: &[Product]) -> (Vec<PriceChange>, Cart) {
    let mut repriced = cart.clone();
    let mut changes = Vec::new();
    for line in &mut repriced.items {
        let Some(product) = catalogue.iter().find(|p| p.product_id == line.product_id) else { continue };
        match line.unit_price_cents {
            Some(old) if old != product.price_cents => changes.push(PriceChange {
                product_id: line.product_id.clone(),
                old_unit_price_cents: old,
                new_unit_price_cents: product.price_cents,
            }),
            _ => {}
        }
        line.unit_price_cents = Some(product.price_cents);
    }
    (changes, repriced)
}

/// What a checkout of `lines` takes out of the cart.
pub fn cart_lines(lines: &[OrderLine]) -> Vec<CartLine> {
    lines.iter().map(|l| CartLine::new(&l.product_id, l.quantity)).collect()
}

/// What a checkout of `lines` reserves, under `reservation_id`.
pub fn reservation(reservation_id: String, lines: &[OrderLine]) -> ReservationRequest {
    let items =
        lines.iter().map(|l| ReservationLine { product_id: l.product_id.clone(), quantity: l.quantity }).collect();
    ReservationRequest { reservation_id, items }
}

/// What `lines` cost.
pub fn total_cents(lines: &[OrderLine]) -> u64 {
    lines.iter().map(|l| l.unit_price_cents * u64::from(l.quantity)).sum()
}

impl PricedCart {
    pub fn order_lines(&self) -> Vec<OrderLine> {
        self.items
            .iter()
            .map(|l| OrderLine {
                product_id: l.product_id.clone(),
                seller_id: l.seller_id.clone(),
                name: l.name.clone(),
                unit_price_cents: l.unit_price_cents,
                quantity: l.quantity,
            })
            .collect()
    }
}

/// `POST /cart/checkout`.
#[derive(Debug, Deserialize)]
pub struct CheckoutRequest {
    pub payment_token: String,
    #[serde(default)]
    pub shipping_address: Option<ShippingAddress>,
}

impl CheckoutRequest {
    /// The request with its address checked (trimmed, country in upper case), or why not.
    pub fn checked(self) -> Result<Self, Invalid> {
        let shipping_address = self.shipping_address.map(ShippingAddress::checked).transpose()?;
        Ok(Self { shipping_address, ..self })
    }
}

/// The `Idempotency-Key` header: 1-64 visible ASCII characters.
pub fn idempotency_key(header: &str) -> Result<String, Invalid> {
    if (1..=64).contains(&header.len()) && header.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(format!("{EXPLICIT}{header}"))
    } else {
        Err(Invalid("Idempotency-Key must be 1 to 64 visible ASCII characters".into()))
    }
}

/// Where the keys of `Idempotency-Key` headers live among checkout records.
const EXPLICIT: &str = "key:";

/// The key of a checkout sent without one: the cart's, so repeating the checkout of an
/// unchanged cart (a double click, two tabs, a retry) is the same checkout (docs/api.md). An
/// emptied cart names the checkout that emptied it. Explicit keys cannot collide with it:
/// they have a prefix of their own.
pub fn cart_key(cart: &Cart, version: u64) -> String {
    match &cart.checked_out {
        Some(key) if cart.items.is_empty() => key.clone(),
        _ => format!("cart:v{version}"),
    }
}

/// Where one checkout (one user, one key) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutStatus {
    Running,
    /// Answered for good: the same key gets the same answer.
    Done,
    /// Failed before anything was done, or given up and undone by the reconciler: the same
    /// key may try again, as a new attempt with new ids.
    Retryable,
    /// Outlived its lease without an answer, never resumed: the reconciler is undoing it.
    Abandoning,
}

/// One checkout, as recorded to make `Idempotency-Key` work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkout {
    pub user_id: String,
    pub key: String,
    pub status: CheckoutStatus,
    /// Incremented by every retry after a retryable failure: each attempt has its own ids.
    pub attempt: u32,
    pub order_id: String,
    pub lease_until: DateTime<Utc>,
    /// The answer given, once `Done`: HTTP status and JSON body.
    #[serde(default)]
    pub answer: Option<(u16, serde_json::Value)>,
    /// The cart as this attempt priced it: a resumed attempt buys exactly this, whatever the
    /// cart holds by then, so its payment, reservation and order agree. Stored as the
    /// contract's lines: a change to `contracts::OrderLine` is a change to stored records.
    #[serde(default)]
    pub snapshot: Option<Vec<OrderLine>>,
    /// The request's payment token: a client's key reused with another request is refused.
    #[serde(default)]
    pub payment_token: String,
    /// The request's shipping address (checked): part of the request a client's key is
    /// bound to, like the token, and what the order is sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
}

impl Checkout {
    pub fn start(
        user_id: &str,
        key: &str,
        payment_token: &str,
        attempt: u32,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Self {
        Self {
            payment_token: payment_token.to_owned(),
            user_id: user_id.to_owned(),
            key: key.to_owned(),
            status: CheckoutStatus::Running,
            attempt,
            order_id: format!("ord_{}", ulid::Ulid::generate()),
            lease_until: now + lease,
            answer: None,
            snapshot: None,
            shipping_address: None,
        }
    }

    /// Whether a request with `payment_token` and `address` is this checkout again. Only a
    /// client's own key binds the request: a cart's key is the same cart, whatever the token
    /// and the address.
    pub fn is_same_request(&self, payment_token: &str, address: Option<&ShippingAddress>) -> bool {
        !self.is_explicit()
            || ((self.payment_token.is_empty() || self.payment_token == payment_token)
                && self.shipping_address.as_ref() == address)
    }

    /// Whether it may still hold an authorization or a reservation: running or being undone.
    pub fn is_open(&self) -> bool {
        matches!(self.status, CheckoutStatus::Running | CheckoutStatus::Abandoning)
    }

    /// Whether the key is the client's own (an `Idempotency-Key`), not the cart's.
    pub fn is_explicit(&self) -> bool {
        self.key.starts_with(EXPLICIT)
    }

    /// The key the payment is authorized under: one authorization per attempt.
    pub fn payment_key(&self) -> String {
        format!("{}:{}:{}", self.user_id, self.key, self.attempt)
    }

    pub fn reservation_id(&self) -> String {
        format!("rsv_{}", self.order_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: &str, price: u64) -> Product {
        Product {
            product_id: id.into(),
            seller_id: "s".into(),
            name: id.to_uppercase(),
            description: String::new(),
            category: "c".into(),
            price_cents: price,
            currency: CURRENCY.into(),
            stock: 10,
            stock_shards: 1,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn quantities_set_remove_and_are_bounded() {
        let mut cart = Cart::empty("u");
        cart.set("a", 2, None).unwrap();
        cart.set("b", 1, None).unwrap();
        cart.set("a", 5, None).unwrap();
        assert_eq!(cart.items, vec![CartLine::new("a", 5), CartLine::new("b", 1)]);
        cart.set("b", 0, None).unwrap();
        assert_eq!(cart.items.len(), 1);
        assert!(cart.set("a", 100, None).is_err());
        assert!(cart.set("a", -1, None).is_err());
        let mut full = Cart::empty("u");
        for i in 0..MAX_LINES {
            full.set(&format!("p{i}"), 1, None).unwrap();
        }
        assert!(full.set("one-more", 1, None).is_err());
    }

    #[test]
    fn prices_come_from_the_catalogue_and_vanished_products_drop_out() {
        let mut cart = Cart::empty("u");
        cart.set("a", 2, None).unwrap();
        cart.set("gone", 1, None).unwrap();
        let priced = price(&cart, &[product("a", 1299)]);
        assert_eq!(priced.items.len(), 1);
        assert_eq!((priced.items[0].line_total_cents, priced.total_cents), (2598, 2598));
        assert_eq!(priced.items[0].name, "A");
    }

    #[test]
    fn a_line_keeps_its_price_until_checkout_compares_it() {
        let mut cart = Cart::empty("u");
        cart.set("a", 2, Some(1000)).unwrap();
        cart.set("b", 1, Some(500)).unwrap();
        let catalogue = [product("a", 1299), product("b", 500)];
        assert_eq!(price(&cart, &catalogue).total_cents, 2500, "the prices it was put in at");
        let (changes, repriced) = price_changes(&cart, &catalogue);
        assert_eq!(
            changes,
            [PriceChange { product_id: "a".into(), old_unit_price_cents: 1000, new_unit_price_cents: 1299 }]
        );
        assert_eq!(price(&repriced, &catalogue).total_cents, 3098);
        assert!(price_changes(&repriced, &catalogue).0.is_empty());
    }

    #[test]
    fn checking_out_removes_what_was_bought() {
        let mut cart = Cart::empty("u");
        cart.set("a", 3, None).unwrap();
        cart.set("b", 1, None).unwrap();
        let left = cart.without(&[CartLine::new("a", 2), CartLine::new("b", 1)], "k");
        assert_eq!(left.items, vec![CartLine::new("a", 1)]);
    }

    #[test]
    fn a_cart_without_a_key_is_its_own_key_and_an_emptied_one_names_its_checkout() {
        let mut cart = Cart::empty("u");
        cart.set("a", 1, None).unwrap();
        assert_eq!(cart_key(&cart, 7), "cart:v7");
        let emptied = cart.without(&[CartLine::new("a", 1)], "cart:v7");
        assert_eq!(cart_key(&emptied, 8), "cart:v7", "a repeat of the checkout that emptied it");
        let mut refilled = emptied.clone();
        refilled.set("a", 1, None).unwrap();
        assert_eq!(cart_key(&refilled, 9), "cart:v9");
        assert_eq!(idempotency_key("cart:v9").unwrap(), "key:cart:v9", "a client's key never names a cart");
    }

    #[test]
    fn keys_are_checked_and_attempts_have_their_own_ids() {
        assert!(idempotency_key("k-1").is_ok());
        assert!(idempotency_key("").is_err());
        assert!(idempotency_key(&"x".repeat(65)).is_err());
        let now = Utc::now();
        let first = Checkout::start("u", "key:k", "tok_visa", 1, now, chrono::Duration::seconds(30));
        let second = Checkout::start("u", "key:k", "tok_visa", 2, now, chrono::Duration::seconds(30));
        assert_ne!(first.payment_key(), second.payment_key());
        assert_ne!(first.reservation_id(), second.reservation_id());
        assert!(first.is_same_request("tok_visa", None));
        assert!(!first.is_same_request("tok_mastercard", None), "a client's key is bound to its request");
        let home = ShippingAddress {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Springfield".into(),
            postal_code: "12345".into(),
            country: "US".into(),
        };
        assert!(!first.is_same_request("tok_visa", Some(&home)), "and to its address");
        let shipped = Checkout { shipping_address: Some(home.clone()), ..first.clone() };
        assert!(shipped.is_same_request("tok_visa", Some(&home)));
        assert!(!shipped.is_same_request("tok_visa", None));
        let cart = Checkout::start("u", "cart:v3", "tok_visa", 1, now, chrono::Duration::seconds(30));
        assert!(cart.is_same_request("tok_mastercard", Some(&home)), "a cart's key is the cart");
    }
}
