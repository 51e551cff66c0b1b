//! The catalogue and its stock: what a valid product and change are, and how a
//! reservation request is read (the shapes are `shared::contracts`'); and the sellers:
//! a profile made `pending` when a seller registers, approved or suspended by the admin.
//! Pure rules: no AWS, no HTTP.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::contracts::{Product, ReservationLine, ReservationRequest};
use shared::events::{Event, SellerApproved, SellerSuspended, UserRegistered};
use shared::http::not_null;
use shared::{CURRENCY, CorrelationId, Envelope, Invalid};

pub const MAX_TEXT_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// The longest reservation id.
pub const MAX_RESERVATION_ID: usize = 128;
/// Lines in one reservation: one DynamoDB transaction holds 100 items, one is the record.
pub const MAX_RESERVATION_LINES: usize = 99;
/// The most items one product's stock is spread over (docs/capacity.md): 32 carry several
/// times the 1,000 reservations/s a hot product is designed for.
pub const MAX_STOCK_SHARDS: u32 = 32;

/// `POST /products`.
#[derive(Debug, Deserialize)]
pub struct NewProduct {
    pub name: String,
    #[serde(default, deserialize_with = "not_null")]
    pub description: Option<String>,
    pub category: String,
    pub price_cents: i64,
    pub stock: i64,
    #[serde(default, deserialize_with = "not_null")]
    pub stock_shards: Option<i64>,
}

/// `PATCH /products/{id}`: any of the fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductChanges {
    // Left out = unchanged; `null` is refused (400) rather than read as "unchanged".
    #[serde(default, deserialize_with = "not_null")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub category: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub price_cents: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    pub stock: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    pub stock_shards: Option<i64>,
}

/// A required text: at most `max` characters as sent (what the schema's maxLength counts),
/// not blank (the schema's `pattern: \S`), stored trimmed.
fn text(field: &str, value: &str, max: usize) -> Result<String, Invalid> {
    if value.chars().count() > max {
        return Err(Invalid(format!("{field} must be at most {max} characters")));
    }
    let value = shared::http::trim_blank(value);
    if value.is_empty() {
        return Err(Invalid(format!("{field} must not be blank")));
    }
    Ok(value.to_owned())
}

fn description(value: Option<&str>) -> Result<String, Invalid> {
    let value = value.unwrap_or_default().trim();
    if value.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Invalid(format!("description must be at most {MAX_DESCRIPTION_CHARS} characters")));
    }
    Ok(value.to_owned())
}

fn price(value: i64) -> Result<u64, Invalid> {
    // At most a million dollars: totals of 99 x 99 lines stay far from overflow.
    u64::try_from(value)
        .ok()
        .filter(|p| (1..=100_000_000).contains(p))
        .ok_or_else(|| Invalid("price_cents must be from 1 to 100000000".into()))
}

fn stock(value: i64) -> Result<u32, Invalid> {
    u32::try_from(value)
        .ok()
        .filter(|s| *s <= 1_000_000)
        .ok_or_else(|| Invalid("stock must be from 0 to 1000000".into()))
}

fn stock_shards(value: i64) -> Result<u32, Invalid> {
    u32::try_from(value)
        .ok()
        .filter(|s| (1..=MAX_STOCK_SHARDS).contains(s))
        .ok_or_else(|| Invalid(format!("stock_shards must be from 1 to {MAX_STOCK_SHARDS}")))
}

impl NewProduct {
    pub fn validate(self, seller_id: &str, now: DateTime<Utc>) -> Result<Product, Invalid> {
        Ok(Product {
            product_id: format!("prd_{}", ulid::Ulid::generate()),
            seller_id: seller_id.to_owned(),
            name: text("name", &self.name, MAX_TEXT_CHARS)?,
            description: description(self.description.as_deref())?,
            category: text("category", &self.category, MAX_TEXT_CHARS)?.to_lowercase(),
            price_cents: price(self.price_cents)?,
            currency: CURRENCY.to_owned(),
            stock: stock(self.stock)?,
            stock_shards: self.stock_shards.map_or(Ok(1), stock_shards)?,
            created_at: now,
            updated_at: now,
        })
    }
}

impl ProductChanges {
    /// `product` with the changes applied, or why they are not valid.
    pub fn apply(&self, product: &Product, now: DateTime<Utc>) -> Result<Product, Invalid> {
        let mut changed = product.clone();
        if let Some(name) = &self.name {
            changed.name = text("name", name, MAX_TEXT_CHARS)?;
        }
        if let Some(value) = &self.description {
            changed.description = description(Some(value))?;
        }
        if let Some(category) = &self.category {
            changed.category = text("category", category, MAX_TEXT_CHARS)?.to_lowercase();
        }
        if let Some(value) = self.price_cents {
            changed.price_cents = price(value)?;
        }
        if let Some(value) = self.stock {
            changed.stock = stock(value)?;
        }
        if let Some(value) = self.stock_shards {
            changed.stock_shards = stock_shards(value)?;
        }
        changed.updated_at = now;
        Ok(changed)
    }
}

/// The lines of a reservation request, one per product (repeated products add up), sorted;
/// or why it is not valid.
pub fn reservation_lines(request: &ReservationRequest) -> Result<Vec<ReservationLine>, Invalid> {
    if request.reservation_id.trim().is_empty() || request.reservation_id.len() > MAX_RESERVATION_ID {
        return Err(Invalid(format!("reservation_id must be 1 to {MAX_RESERVATION_ID} characters")));
    }
    let mut merged: BTreeMap<&str, u32> = BTreeMap::new();
    for line in &request.items {
        if line.quantity == 0 {
            return Err(Invalid(format!("quantity of {} must be at least 1", line.product_id)));
        }
        let total = merged.entry(&line.product_id).or_default();
        *total = total.checked_add(line.quantity).ok_or_else(|| Invalid("quantity too large".into()))?;
    }
    if merged.is_empty() || merged.len() > MAX_RESERVATION_LINES {
        return Err(Invalid(format!("a reservation has 1 to {MAX_RESERVATION_LINES} products")));
    }
    Ok(merged
        .into_iter()
        .map(|(product_id, quantity)| ReservationLine { product_id: product_id.to_owned(), quantity })
        .collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Held,
    Released,
    Committed,
}

/// Units taken from stock for one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: String,
    pub status: ReservationStatus,
    pub items: Vec<ReservationLine>,
    /// Where the units of sharded products came from, so that a release gives them back there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardTake>,
    pub created_at: DateTime<Utc>,
}

/// Units a reservation took from one stock shard of a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardTake {
    pub product_id: String,
    pub shard: u32,
    pub quantity: u32,
}

/// How `quantity` is taken from shards holding `counts`: from `start` on, round the shards,
/// as much as each holds; `None` if together they hold less. Starting at a random shard
/// spreads concurrent buyers over the shards.
pub fn take_from_shards(counts: &[u32], start: usize, quantity: u32) -> Option<Vec<(u32, u32)>> {
    let mut left = quantity;
    let mut takes = Vec::new();
    for k in (0..counts.len()).map(|i| (start + i) % counts.len()) {
        if left == 0 {
            break;
        }
        let taken = counts[k].min(left);
        if taken > 0 {
            takes.push((k as u32, taken));
            left -= taken;
        }
    }
    (left == 0).then_some(takes)
}

/// `total` units spread over `shards` items as evenly as can be (the first ones get the rest).
pub fn spread(total: u32, shards: u32) -> Vec<u32> {
    (0..shards).map(|k| total / shards + u32::from(k < total % shards)).collect()
}

impl Reservation {
    /// What releasing an id that reserved nothing leaves: released, holding nothing.
    pub fn tombstone(reservation_id: &str, now: DateTime<Utc>) -> Self {
        Self {
            reservation_id: reservation_id.to_owned(),
            status: ReservationStatus::Released,
            items: Vec::new(),
            shards: Vec::new(),
            created_at: now,
        }
    }
}

/// A product there is not enough of (docs/api.md, Checkout: `shortages`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortage {
    pub product_id: String,
    pub requested: u32,
    pub available: u32,
}

/// Where a seller stands (docs/api.md, Sellers): only `approved` sellers list products; a
/// `suspended` seller's products behave like deleted ones until approved again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SellerStatus {
    Pending,
    Approved,
    Suspended,
}

impl SellerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SellerStatus::Pending => "pending",
            SellerStatus::Approved => "approved",
            SellerStatus::Suspended => "suspended",
        }
    }

    /// `?status=` of `GET /admin/sellers`.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        match text {
            "pending" => Ok(SellerStatus::Pending),
            "approved" => Ok(SellerStatus::Approved),
            "suspended" => Ok(SellerStatus::Suspended),
            other => Err(Invalid(format!("status must be pending, approved or suspended, not {other:?}"))),
        }
    }
}

/// A seller's profile, as the API shows it; `seller_id` is the seller's `user_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seller {
    pub seller_id: String,
    pub name: String,
    pub email: String,
    pub status: SellerStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Seller {
    /// The profile a seller's registration makes; `None` for anyone else's registration.
    pub fn pending(registered: &UserRegistered, now: DateTime<Utc>) -> Option<Self> {
        (registered.role == shared::events::Role::Seller).then(|| Self {
            seller_id: registered.user_id.clone(),
            name: registered.name.clone(),
            email: registered.email.clone(),
            status: SellerStatus::Pending,
            created_at: now,
            updated_at: now,
        })
    }

    /// The profile moved to `to`; `None` if it is there already (approving an approved
    /// seller changes nothing and says nothing).
    pub fn moved(&self, to: SellerStatus, now: DateTime<Utc>) -> Option<Self> {
        (self.status != to).then(|| Self { status: to, updated_at: now, ..self.clone() })
    }

    /// The events a move to this profile's status publishes: `seller.approved`, or
    /// `seller.suspended` with `reason`; none for `pending`, which no move leads to.
    pub fn status_events(&self, reason: Option<&str>, correlation_id: &CorrelationId) -> Vec<Envelope> {
        let (seller_id, name, email) = (self.seller_id.clone(), self.name.clone(), self.email.clone());
        let event = match self.status {
            SellerStatus::Approved => Event::SellerApproved(SellerApproved { seller_id, name, email }),
            SellerStatus::Suspended => Event::SellerSuspended(SellerSuspended {
                seller_id,
                name,
                email,
                reason: reason.unwrap_or_default().to_owned(),
            }),
            SellerStatus::Pending => return Vec::new(),
        };
        vec![Envelope::new(event, correlation_id)]
    }
}

/// `POST /admin/sellers/{seller_id}/suspend`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suspension {
    pub reason: String,
}

pub const MAX_REASON_CHARS: usize = 500;

impl Suspension {
    /// The reason, trimmed; 1-500 characters as sent, not blank.
    pub fn reason(&self) -> Result<String, Invalid> {
        text("reason", &self.reason, MAX_REASON_CHARS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str, price: i64, stock: i64) -> NewProduct {
        NewProduct {
            name: name.into(),
            description: None,
            category: "Books".into(),
            price_cents: price,
            stock,
            stock_shards: None,
        }
    }

    #[test]
    fn stock_shards_are_from_1_to_32_and_units_spread_evenly_over_them() {
        let mut sharded = new("x", 1, 10);
        sharded.stock_shards = Some(4);
        assert_eq!(sharded.validate("s", Utc::now()).unwrap().stock_shards, 4);
        assert_eq!(new("x", 1, 10).validate("s", Utc::now()).unwrap().stock_shards, 1, "one by default");
        for wrong in [0, 33, -1] {
            let mut product = new("x", 1, 10);
            product.stock_shards = Some(wrong);
            assert!(product.validate("s", Utc::now()).is_err(), "{wrong}");
        }
        assert_eq!(spread(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(spread(2, 4), vec![1, 1, 0, 0]);
        assert_eq!(spread(10, 4).iter().sum::<u32>(), 10);
    }

    #[test]
    fn a_line_takes_from_the_shards_round_from_its_start_and_never_more_than_they_hold() {
        assert_eq!(take_from_shards(&[3, 3, 2, 2], 1, 2), Some(vec![(1, 2)]));
        assert_eq!(take_from_shards(&[0, 1, 0, 2], 2, 3), Some(vec![(3, 2), (1, 1)]), "one line over two shards");
        assert_eq!(take_from_shards(&[1, 1, 1, 0], 3, 3), Some(vec![(0, 1), (1, 1), (2, 1)]));
        assert_eq!(take_from_shards(&[1, 0, 1, 0], 0, 3), None, "two units cannot make three");
        assert_eq!(take_from_shards(&[0, 0], 1, 1), None);
    }

    #[test]
    fn products_follow_the_contract() {
        let product = new(" Dune ", 1299, 3).validate("usr_s", Utc::now()).unwrap();
        assert_eq!(
            (product.name.as_str(), product.category.as_str(), product.currency.as_str()),
            ("Dune", "books", "USD")
        );
        assert!(product.product_id.starts_with("prd_"));
        assert!(new("", 1, 1).validate("s", Utc::now()).is_err(), "empty name");
        assert!(new("x", 0, 1).validate("s", Utc::now()).is_err(), "price < 1");
        assert!(new("x", 1, -1).validate("s", Utc::now()).is_err(), "stock < 0");
        assert!(new("x", i64::MAX, 1).validate("s", Utc::now()).is_err(), "out of range");
    }

    #[test]
    fn changes_apply_only_what_is_given_and_are_validated() {
        let product = new("Dune", 1299, 3).validate("s", Utc::now()).unwrap();
        let changes = ProductChanges { price_cents: Some(999), ..Default::default() };
        let changed = changes.apply(&product, Utc::now()).unwrap();
        assert_eq!((changed.price_cents, changed.name.as_str(), changed.stock), (999, "Dune", 3));
        assert!(ProductChanges { stock: Some(-2), ..Default::default() }.apply(&product, Utc::now()).is_err());
        assert!(serde_json::from_str::<ProductChanges>(r#"{"seller_id":"me"}"#).is_err(), "unknown fields are refused");
        assert!(serde_json::from_str::<ProductChanges>(r#"{"stock":null}"#).is_err(), "null is not 'unchanged'");
        assert!(
            serde_json::from_str::<NewProduct>(
                r#"{"name":"a","description":null,"category":"b","price_cents":1,"stock":0}"#
            )
            .is_err()
        );
    }

    #[test]
    fn sellers_start_pending_and_move_only_when_their_status_changes() {
        let registered =
            |role| UserRegistered { user_id: "usr_s".into(), email: "s@example.com".into(), name: "S".into(), role };
        assert!(Seller::pending(&registered(shared::events::Role::Customer), Utc::now()).is_none());
        let seller = Seller::pending(&registered(shared::events::Role::Seller), Utc::now()).unwrap();
        assert_eq!((seller.seller_id.as_str(), seller.status), ("usr_s", SellerStatus::Pending));
        let approved = seller.moved(SellerStatus::Approved, Utc::now()).unwrap();
        assert_eq!(approved.status, SellerStatus::Approved);
        assert!(approved.moved(SellerStatus::Approved, Utc::now()).is_none(), "a no-op");
        assert_eq!(SellerStatus::parse("suspended").unwrap(), SellerStatus::Suspended);
        assert!(SellerStatus::parse("Approved").is_err());
        let reason = |r: &str| Suspension { reason: r.into() }.reason();
        assert_eq!(reason(" fake goods ").unwrap(), "fake goods");
        assert!(reason("  ").is_err());
        assert!(reason(&"x".repeat(501)).is_err());
        assert!(reason(&"x".repeat(500)).is_ok());
    }

    #[test]
    fn reservation_lines_are_merged_and_checked() {
        let lines = |items: Vec<(&str, u32)>| {
            reservation_lines(&ReservationRequest {
                reservation_id: "rsv_1".into(),
                items: items.into_iter().map(|(p, q)| ReservationLine { product_id: p.into(), quantity: q }).collect(),
            })
        };
        assert_eq!(
            lines(vec![("b", 1), ("a", 2), ("b", 3)]).unwrap(),
            vec![
                ReservationLine { product_id: "a".into(), quantity: 2 },
                ReservationLine { product_id: "b".into(), quantity: 4 }
            ]
        );
        assert!(lines(vec![]).is_err());
        assert!(lines(vec![("a", 0)]).is_err());
        let too_many: Vec<(String, u32)> = (0..100).map(|i| (format!("p{i}"), 1)).collect();
        assert!(lines(too_many.iter().map(|(p, q)| (p.as_str(), *q)).collect()).is_err());
    }
}
