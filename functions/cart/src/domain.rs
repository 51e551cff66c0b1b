//! Carts and checkout: what a cart holds, how it is priced from the catalogue (never from
//! the client), and the ids one checkout attempt uses. Pure rules: no AWS, no HTTP.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const CURRENCY: &str = "USD";
pub const MAX_QUANTITY: u32 = 99;
/// Distinct products in a cart: one checkout reserves them in one transaction.
pub const MAX_LINES: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// One line as stored: what and how many; prices are looked up, never kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub product_id: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Cart {
    pub user_id: String,
    pub items: Vec<CartLine>,
}

/// `PUT /cart/items/{product_id}`.
#[derive(Debug, Deserialize)]
pub struct SetQuantity {
    pub quantity: i64,
}

impl Cart {
    pub fn empty(user_id: &str) -> Self {
        Self { user_id: user_id.to_owned(), items: Vec::new() }
    }

    /// Sets a product's quantity (0 removes it).
    pub fn set(&mut self, product_id: &str, quantity: i64) -> Result<(), Invalid> {
        let quantity = u32::try_from(quantity)
            .ok()
            .filter(|q| *q <= MAX_QUANTITY)
            .ok_or_else(|| Invalid(format!("quantity must be from 0 to {MAX_QUANTITY}")))?;
        let full = self.items.len() >= MAX_LINES;
        match (self.items.iter_mut().find(|l| l.product_id == product_id), quantity) {
            (Some(_), 0) => self.remove(product_id),
            (Some(line), _) => line.quantity = quantity,
            (None, 0) => {}
            (None, _) if full => return Err(Invalid(format!("a cart holds at most {MAX_LINES} different products"))),
            (None, _) => self.items.push(CartLine { product_id: product_id.to_owned(), quantity }),
        }
        Ok(())
    }

    pub fn remove(&mut self, product_id: &str) {
        self.items.retain(|l| l.product_id != product_id);
    }

    /// What is left after `bought` was checked out (lines changed meanwhile keep the rest).
    pub fn without(&self, bought: &[CartLine]) -> Cart {
        let mut left = self.clone();
        for line in bought {
            if let Some(current) = left.items.iter_mut().find(|l| l.product_id == line.product_id) {
                current.quantity = current.quantity.saturating_sub(line.quantity);
            }
        }
        left.items.retain(|l| l.quantity > 0);
        left
    }
}

/// A catalogue entry, as the Seller service's lookup answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductInfo {
    pub product_id: String,
    pub seller_id: String,
    pub name: String,
    pub price_cents: u64,
    pub stock: u32,
}

/// A priced line (api.md `cart.items`).
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

/// The cart as the API shows it (api.md `cart`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PricedCart {
    pub user_id: String,
    pub items: Vec<PricedLine>,
    pub total_cents: u64,
    pub currency: &'static str,
}

/// Prices `cart` from the catalogue; products that no longer exist are left out.
pub fn price(cart: &Cart, catalogue: &[ProductInfo]) -> PricedCart {
    let by_id: HashMap<&str, &ProductInfo> = catalogue.iter().map(|p| (p.product_id.as_str(), p)).collect();
    let items: Vec<PricedLine> = cart
        .items
        .iter()
        .filter_map(|line| {
            let product = by_id.get(line.product_id.as_str())?;
            Some(PricedLine {
                product_id: line.product_id.clone(),
                name: product.name.clone(),
                unit_price_cents: product.price_cents,
                quantity: line.quantity,
                line_total_cents: product.price_cents * u64::from(line.quantity),
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

/// One line of the order a checkout makes (as the Order service takes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: String,
    pub seller_id: String,
    pub name: String,
    pub unit_price_cents: u64,
    pub quantity: u32,
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
}

/// The `Idempotency-Key` header: 1-64 characters, or none (then every call is new).
pub fn idempotency_key(header: Option<&str>) -> Result<String, Invalid> {
    match header {
        None => Ok(format!("auto-{}", ulid::Ulid::generate())),
        Some(key) if (1..=64).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => Ok(key.to_owned()),
        Some(_) => Err(Invalid("Idempotency-Key must be 1 to 64 visible ASCII characters".into())),
    }
}

/// Where one checkout (one user, one key) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutStatus {
    Running,
    /// Answered for good: the same key gets the same answer.
    Done,
    /// Failed for a passing reason (a service was down), all undone: the same key may retry.
    Retryable,
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
    /// cart holds by then, so its payment, reservation and order agree.
    #[serde(default)]
    pub snapshot: Option<Vec<OrderLine>>,
}

impl Checkout {
    pub fn start(user_id: &str, key: &str, attempt: u32, now: DateTime<Utc>, lease: chrono::Duration) -> Self {
        Self {
            user_id: user_id.to_owned(),
            key: key.to_owned(),
            status: CheckoutStatus::Running,
            attempt,
            order_id: format!("ord_{}", ulid::Ulid::generate()),
            lease_until: now + lease,
            answer: None,
            snapshot: None,
        }
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

    fn product(id: &str, price: u64) -> ProductInfo {
        ProductInfo {
            product_id: id.into(),
            seller_id: "s".into(),
            name: id.to_uppercase(),
            price_cents: price,
            stock: 10,
        }
    }

    #[test]
    fn quantities_set_remove_and_are_bounded() {
        let mut cart = Cart::empty("u");
        cart.set("a", 2).unwrap();
        cart.set("b", 1).unwrap();
        cart.set("a", 5).unwrap();
        assert_eq!(
            cart.items,
            vec![CartLine { product_id: "a".into(), quantity: 5 }, CartLine { product_id: "b".into(), quantity: 1 }]
        );
        cart.set("b", 0).unwrap();
        assert_eq!(cart.items.len(), 1);
        assert!(cart.set("a", 100).is_err());
        assert!(cart.set("a", -1).is_err());
        let mut full = Cart::empty("u");
        for i in 0..MAX_LINES {
            full.set(&format!("p{i}"), 1).unwrap();
        }
        assert!(full.set("one-more", 1).is_err());
    }

    #[test]
    fn prices_come_from_the_catalogue_and_vanished_products_drop_out() {
        let mut cart = Cart::empty("u");
        cart.set("a", 2).unwrap();
        cart.set("gone", 1).unwrap();
        let priced = price(&cart, &[product("a", 1299)]);
        assert_eq!(priced.items.len(), 1);
        assert_eq!((priced.items[0].line_total_cents, priced.total_cents), (2598, 2598));
        assert_eq!(priced.items[0].name, "A");
    }

    #[test]
    fn checking_out_removes_what_was_bought() {
        let mut cart = Cart::empty("u");
        cart.set("a", 3).unwrap();
        cart.set("b", 1).unwrap();
        let left = cart.without(&[
            CartLine { product_id: "a".into(), quantity: 2 },
            CartLine { product_id: "b".into(), quantity: 1 },
        ]);
        assert_eq!(left.items, vec![CartLine { product_id: "a".into(), quantity: 1 }]);
    }

    #[test]
    fn keys_are_checked_and_attempts_have_their_own_ids() {
        assert!(idempotency_key(Some("k-1")).is_ok());
        assert!(idempotency_key(Some("")).is_err());
        assert!(idempotency_key(Some(&"x".repeat(65))).is_err());
        assert!(idempotency_key(None).unwrap().starts_with("auto-"));
        let now = Utc::now();
        let first = Checkout::start("u", "k", 1, now, chrono::Duration::seconds(30));
        let second = Checkout::start("u", "k", 2, now, chrono::Duration::seconds(30));
        assert_ne!(first.payment_key(), second.payment_key());
        assert_ne!(first.reservation_id(), second.reservation_id());
    }
}
