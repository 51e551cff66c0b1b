//! Orders: what an order is, how one is made of a checkout's `NewOrder` (shared::contracts),
//! its shipments (one per seller), the states both move through (with the order's history),
//! and the events those moves publish. Pure rules: no AWS, no HTTP.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::contracts::{NewOrder, OrderLine, ShippingAddress};
use shared::events::{Event, OrderCancelled, OrderCreated, OrderDelivered, OrderItem, OrderShipped};
use shared::{CURRENCY, CorrelationId, Envelope, Invalid};

/// The longest id (order, user, payment, reservation) an order takes: they become keys.
pub const MAX_ORDER_ID: usize = 128;
/// Lines of one order: a checkout buys at most a cart's 50, and the order is written with
/// one shipment item per seller in one transaction (at most 100 items).
pub const MAX_ORDER_LINES: usize = 50;
/// `carrier` and `tracking_number` of `ship`: 1 to 64 characters.
pub const MAX_SHIPPING_FIELD: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created, payment authorized.
    Placed,
    /// Payment settled.
    Paid,
    /// Every shipment shipped.
    Shipped,
    /// Every shipment delivered.
    Delivered,
    Cancelled,
    PaymentFailed,
}

impl OrderStatus {
    /// Whether the order's shipments are its sellers' to see and move: once it is paid.
    pub fn is_fulfilled_by_sellers(self) -> bool {
        matches!(self, OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    Pending,
    Shipped,
    Delivered,
}

impl ShipmentStatus {
    /// The `?status=` of `GET /seller/shipments` (default `pending`).
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Pending => "pending",
            ShipmentStatus::Shipped => "shipped",
            ShipmentStatus::Delivered => "delivered",
        }
    }
}

/// One line of a shipment (docs/api.md, Fulfilment: `shipment.items`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentItem {
    pub product_id: String,
    pub name: String,
    pub quantity: u32,
}

/// What one seller sends of an order (docs/api.md, Fulfilment: `shipment`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    pub shipment_id: String,
    pub order_id: String,
    pub seller_id: String,
    pub items: Vec<ShipmentItem>,
    pub status: ShipmentStatus,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub ship_to: Option<ShippingAddress>,
    pub created_at: DateTime<Utc>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// `POST /seller/shipments/{shipment_id}/ship`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ShipRequest {
    pub carrier: String,
    pub tracking_number: String,
}

impl ShipRequest {
    /// Trimmed, or why not: each field 1 to 64 characters (as sent) and not blank.
    pub fn checked(self) -> Result<Self, Invalid> {
        let field = |name: &str, value: &str| {
            let trimmed = shared::http::trim_blank(value);
            if trimmed.is_empty() || value.chars().count() > MAX_SHIPPING_FIELD {
                return Err(Invalid(format!("{name} must be 1 to {MAX_SHIPPING_FIELD} characters, not blank")));
            }
            Ok(trimmed.to_owned())
        };
        Ok(Self {
            carrier: field("carrier", &self.carrier)?,
            tracking_number: field("tracking_number", &self.tracking_number)?,
        })
    }
}

/// Why a seller's move of a shipment is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not the caller's shipment (or no such shipment): 404.
    NotFound,
    /// The order or the shipment is not in a state for the move: 409, with the reason.
    Conflict(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: OrderStatus,
    pub at: DateTime<Utc>,
}

/// An order as the API shows it (docs/api.md, Orders: `order`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<OrderLine>,
    pub total_cents: u64,
    pub currency: String,
    pub status: OrderStatus,
    pub payment_id: String,
    /// One per seller whose products the order holds (none for orders made before shipments).
    #[serde(default)]
    pub shipments: Vec<Shipment>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub history: Vec<StatusChange>,
}

/// The order a checkout sent (`POST /internal/orders`), placed, and its reservation id; or
/// why it is not one.
pub fn into_order(new: NewOrder, now: DateTime<Utc>) -> Result<(Order, String), Invalid> {
    if new.items.is_empty() {
        return Err(Invalid("an order has at least one item".into()));
    }
    if new.items.len() > MAX_ORDER_LINES {
        return Err(Invalid(format!("an order has at most {MAX_ORDER_LINES} items")));
    }
    if new.items.iter().any(|l| l.quantity == 0 || l.unit_price_cents == 0) {
        return Err(Invalid("every item needs a quantity and a price".into()));
    }
    if new.currency != CURRENCY {
        return Err(Invalid(format!("only {CURRENCY} is accepted")));
    }
    // Checked: an overflow is a wrong total (400), not a panic.
    let sum = new
        .items
        .iter()
        .try_fold(0u64, |sum, l| l.unit_price_cents.checked_mul(u64::from(l.quantity))?.checked_add(sum));
    match sum {
        Some(sum) if sum == new.total_cents => {}
        Some(sum) => {
            return Err(Invalid(format!("total_cents is {} but the items add up to {sum}", new.total_cents)));
        }
        None => return Err(Invalid("the items add up to more than any total".into())),
    }
    // The ids become DynamoDB keys, which have a size limit: bounded, as Seller's are.
    let ids = [&new.order_id, &new.user_id, &new.payment_id, &new.reservation_id];
    if ids.iter().any(|id| id.is_empty() || id.len() > MAX_ORDER_ID) {
        return Err(Invalid("order_id, user_id, payment_id and reservation_id must be 1 to 128 characters".into()));
    }
    if new.items.iter().any(|l| l.seller_id.is_empty() || l.seller_id.len() > MAX_ORDER_ID) {
        return Err(Invalid("every item's seller_id must be 1 to 128 characters".into()));
    }
    let ship_to = new.shipping_address.map(ShippingAddress::checked).transpose()?;
    let shipments = shipments_of(&new.order_id, &new.items, ship_to.as_ref(), now);
    let order = Order {
        order_id: new.order_id,
        user_id: new.user_id,
        items: new.items,
        total_cents: new.total_cents,
        currency: new.currency,
        status: OrderStatus::Placed,
        payment_id: new.payment_id,
        shipments,
        created_at: now,
        updated_at: now,
        history: vec![StatusChange { status: OrderStatus::Placed, at: now }],
    };
    Ok((order, new.reservation_id))
}

/// One pending shipment per seller of `items`, in the order the sellers first appear.
fn shipments_of(
    order_id: &str,
    items: &[OrderLine],
    ship_to: Option<&ShippingAddress>,
    now: DateTime<Utc>,
) -> Vec<Shipment> {
    let mut shipments: Vec<Shipment> = Vec::new();
    for line in items {
        let item =
            ShipmentItem { product_id: line.product_id.clone(), name: line.name.clone(), quantity: line.quantity };
        match shipments.iter_mut().find(|s| s.seller_id == line.seller_id) {
            Some(shipment) => shipment.items.push(item),
            None => shipments.push(Shipment {
                shipment_id: format!("shp_{}", ulid::Ulid::generate()),
                order_id: order_id.to_owned(),
                seller_id: line.seller_id.clone(),
                items: vec![item],
                status: ShipmentStatus::Pending,
                carrier: None,
                tracking_number: None,
                ship_to: ship_to.cloned(),
                created_at: now,
                shipped_at: None,
                delivered_at: None,
            }),
        }
    }
    shipments
}

impl Order {
    /// `order.created`.
    pub fn created(&self, reservation_id: &str, correlation_id: &CorrelationId) -> Envelope {
        let items = self
            .items
            .iter()
            .map(|l| OrderItem {
                product_id: l.product_id.clone(),
                seller_id: l.seller_id.clone(),
                quantity: l.quantity,
                unit_price_cents: l.unit_price_cents,
            })
            .collect();
        let event = OrderCreated {
            order_id: self.order_id.clone(),
            user_id: self.user_id.clone(),
            items,
            total_cents: self.total_cents,
            payment_id: self.payment_id.clone(),
            reservation_id: reservation_id.to_owned(),
        };
        Envelope::new(Event::OrderCreated(event), correlation_id)
    }

    /// The order cancelled by its customer, or why it cannot be.
    pub fn cancel(&self, now: DateTime<Utc>) -> Result<Order, Invalid> {
        if self.shipments.iter().any(|s| s.status != ShipmentStatus::Pending) {
            return Err(Invalid("a shipment of the order has shipped; it can no longer be cancelled".into()));
        }
        match self.status {
            OrderStatus::Placed | OrderStatus::Paid => {
                let mut cancelled = self.clone();
                cancelled.status = OrderStatus::Cancelled;
                cancelled.updated_at = now;
                cancelled.history.push(StatusChange { status: OrderStatus::Cancelled, at: now });
                Ok(cancelled)
            }
            OrderStatus::Cancelled => Err(Invalid("the order is already cancelled".into())),
            OrderStatus::PaymentFailed => Err(Invalid("the order's payment failed; there is nothing to cancel".into())),
            OrderStatus::Shipped | OrderStatus::Delivered => {
                Err(Invalid("the order has shipped; it can no longer be cancelled".into()))
            }
        }
    }

    /// The order with `seller_id`'s shipment `shipment_id` shipped by `carrier` under
    /// `tracking_number` (and `shipped` once every shipment has), or why not.
    pub fn ship(
        &self,
        shipment_id: &str,
        seller_id: &str,
        how: &ShipRequest,
        now: DateTime<Utc>,
    ) -> Result<Order, Refused> {
        self.fulfilment_allowed(shipment_id, seller_id, "shipped")?;
        let mut moved = self.clone();
        let shipment = moved.shipment_mut(shipment_id)?;
        if shipment.status != ShipmentStatus::Pending {
            return Err(Refused::Conflict("the shipment has shipped already".into()));
        }
        shipment.status = ShipmentStatus::Shipped;
        shipment.carrier = Some(how.carrier.clone());
        shipment.tracking_number = Some(how.tracking_number.clone());
        shipment.shipped_at = Some(now);
        moved.follow_shipments(now);
        Ok(moved)
    }

    /// The order with the shipment delivered (and `delivered` once every shipment is), or why not.
    pub fn deliver(&self, shipment_id: &str, seller_id: &str, now: DateTime<Utc>) -> Result<Order, Refused> {
        self.fulfilment_allowed(shipment_id, seller_id, "delivered")?;
        let mut moved = self.clone();
        let shipment = moved.shipment_mut(shipment_id)?;
        match shipment.status {
            ShipmentStatus::Pending => return Err(Refused::Conflict("the shipment has not shipped yet".into())),
            ShipmentStatus::Delivered => return Err(Refused::Conflict("the shipment is delivered already".into())),
            ShipmentStatus::Shipped => {}
        }
        shipment.status = ShipmentStatus::Delivered;
        shipment.delivered_at = Some(now);
        moved.follow_shipments(now);
        Ok(moved)
    }

    /// The seller's shipment of this order: 404 for anyone else's, 409 while the order is
    /// not the sellers' to fulfil (not paid yet, cancelled, payment failed).
    fn fulfilment_allowed(&self, shipment_id: &str, seller_id: &str, what: &str) -> Result<(), Refused> {
        if !self.shipments.iter().any(|s| s.shipment_id == shipment_id && s.seller_id == seller_id) {
            return Err(Refused::NotFound);
        }
        match self.status {
            status if status.is_fulfilled_by_sellers() => Ok(()),
            OrderStatus::Placed => Err(Refused::Conflict(format!("the order is not paid yet; it cannot be {what}"))),
            OrderStatus::Cancelled => Err(Refused::Conflict("the order is cancelled".into())),
            _ => Err(Refused::Conflict("the order's payment failed".into())),
        }
    }

    fn shipment_mut(&mut self, shipment_id: &str) -> Result<&mut Shipment, Refused> {
        self.shipments.iter_mut().find(|s| s.shipment_id == shipment_id).ok_or(Refused::NotFound)
    }

    /// Moves the order after one of its shipments moved: `shipped` once every shipment has
    /// shipped (or been delivered), `delivered` once every one is delivered; each step once in
    /// its history.
    fn follow_shipments(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
        let all = |done: &[ShipmentStatus]| self.shipments.iter().all(|s| done.contains(&s.status));
        let to = if all(&[ShipmentStatus::Delivered]) {
            OrderStatus::Delivered
        } else if all(&[ShipmentStatus::Shipped, ShipmentStatus::Delivered]) {
            OrderStatus::Shipped
        } else {
            return;
        };
        // A last shipment shipped and delivered at once never happens (deliver needs shipped),
        // but a step skipped would still be recorded.
        for step in [OrderStatus::Shipped, OrderStatus::Delivered] {
            if self.history.iter().all(|h| h.status != step) {
                self.history.push(StatusChange { status: step, at: now });
            }
            if step == to {
                break;
            }
        }
        self.status = to;
    }

    /// The shipment `shipment_id` of this order.
    pub fn shipment(&self, shipment_id: &str) -> Option<&Shipment> {
        self.shipments.iter().find(|s| s.shipment_id == shipment_id)
    }

    /// `order.shipped` for one shipment.
    pub fn shipped(&self, shipment: &Shipment, correlation_id: &CorrelationId) -> Envelope {
        let event = OrderShipped {
            order_id: self.order_id.clone(),
            user_id: self.user_id.clone(),
            shipment_id: shipment.shipment_id.clone(),
            seller_id: shipment.seller_id.clone(),
            carrier: shipment.carrier.clone().unwrap_or_default(),
            tracking_number: shipment.tracking_number.clone().unwrap_or_default(),
        };
        Envelope::new(Event::OrderShipped(event), correlation_id)
    }

    /// `order.delivered` for one shipment.
    pub fn delivered(&self, shipment: &Shipment, correlation_id: &CorrelationId) -> Envelope {
        let event = OrderDelivered {
            order_id: self.order_id.clone(),
            user_id: self.user_id.clone(),
            shipment_id: shipment.shipment_id.clone(),
            seller_id: shipment.seller_id.clone(),
        };
        Envelope::new(Event::OrderDelivered(event), correlation_id)
    }

    /// The order moved to `to` (from `placed`, the only state payments move it out of).
    pub fn after_payment(&self, to: OrderStatus, now: DateTime<Utc>) -> Option<Order> {
        (self.status == OrderStatus::Placed).then(|| {
            let mut moved = self.clone();
            moved.status = to;
            moved.updated_at = now;
            moved.history.push(StatusChange { status: to, at: now });
            moved
        })
    }

    /// `order.completed`.
    pub fn completed(&self, correlation_id: &CorrelationId) -> Envelope {
        let event = shared::events::OrderCompleted {
            order_id: self.order_id.clone(),
            user_id: self.user_id.clone(),
            total_cents: self.total_cents,
        };
        Envelope::new(Event::OrderCompleted(event), correlation_id)
    }

    /// `order.cancelled`.
    pub fn cancelled(&self, reason: &str, reservation_id: &str, correlation_id: &CorrelationId) -> Envelope {
        let event = OrderCancelled {
            order_id: self.order_id.clone(),
            user_id: self.user_id.clone(),
            reason: reason.to_owned(),
            payment_id: self.payment_id.clone(),
            reservation_id: reservation_id.to_owned(),
        };
        Envelope::new(Event::OrderCancelled(event), correlation_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn new_order() -> NewOrder {
        NewOrder {
            order_id: "ord_1".into(),
            user_id: "usr_1".into(),
            items: vec![OrderLine {
                product_id: "p".into(),
                seller_id: "s".into(),
                name: "Dune".into(),
                unit_price_cents: 1299,
                quantity: 2,
            }],
            total_cents: 2598,
            currency: CURRENCY.into(),
            payment_id: "pay_1".into(),
            reservation_id: "rsv_1".into(),
            shipping_address: None,
        }
    }

    fn line(product: &str, seller: &str) -> OrderLine {
        OrderLine {
            product_id: product.into(),
            seller_id: seller.into(),
            name: product.to_uppercase(),
            unit_price_cents: 100,
            quantity: 1,
        }
    }

    #[test]
    fn an_order_has_one_shipment_per_seller_and_follows_them_to_delivered() {
        let mut new = new_order();
        new.items = vec![line("a", "s1"), line("b", "s2"), line("c", "s1")];
        new.total_cents = 300;
        new.shipping_address = Some(ShippingAddress {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: Some("Flat 2".into()),
            city: "Springfield".into(),
            postal_code: "12345".into(),
            country: "US".into(),
        });
        let (order, _) = into_order(new.clone(), Utc::now()).unwrap();
        let sellers: Vec<(&str, usize)> =
            order.shipments.iter().map(|s| (s.seller_id.as_str(), s.items.len())).collect();
        assert_eq!(sellers, [("s1", 2), ("s2", 1)]);
        assert!(
            order.shipments.iter().all(|s| s.ship_to == new.shipping_address && s.status == ShipmentStatus::Pending)
        );
        let (one, two) = (order.shipments[0].shipment_id.clone(), order.shipments[1].shipment_id.clone());
        let how = ShipRequest { carrier: "UPS".into(), tracking_number: "1Z".into() };

        assert_eq!(
            order.ship(&one, "s1", &how, Utc::now()).unwrap_err(),
            Refused::Conflict("the order is not paid yet; it cannot be shipped".into())
        );
        let paid = order.after_payment(OrderStatus::Paid, Utc::now()).unwrap();
        assert_eq!(paid.ship(&one, "s2", &how, Utc::now()).unwrap_err(), Refused::NotFound, "another seller's");
        assert_eq!(paid.ship("shp_x", "s1", &how, Utc::now()).unwrap_err(), Refused::NotFound);
        let half = paid.ship(&one, "s1", &how, Utc::now()).unwrap();
        assert_eq!(half.status, OrderStatus::Paid, "one of two shipped");
        assert!(matches!(half.ship(&one, "s1", &how, Utc::now()), Err(Refused::Conflict(_))), "shipped already");
        assert!(half.cancel(Utc::now()).is_err(), "a shipment has shipped");
        assert!(matches!(half.deliver(&two, "s2", Utc::now()), Err(Refused::Conflict(_))), "not shipped yet");
        let delivered_one = half.deliver(&one, "s1", Utc::now()).unwrap();
        assert_eq!(delivered_one.status, OrderStatus::Paid, "the other has not shipped");
        let shipped = delivered_one.ship(&two, "s2", &how, Utc::now()).unwrap();
        assert_eq!(shipped.status, OrderStatus::Shipped);
        let done = shipped.deliver(&two, "s2", Utc::now()).unwrap();
        assert_eq!(done.status, OrderStatus::Delivered);
        let history: Vec<OrderStatus> = done.history.iter().map(|h| h.status).collect();
        assert_eq!(history, [OrderStatus::Placed, OrderStatus::Paid, OrderStatus::Shipped, OrderStatus::Delivered]);
        assert_eq!(done.shipped(&done.shipments[1], &CorrelationId::generate()).event_type(), "order.shipped");
        assert_eq!(done.delivered(&done.shipments[1], &CorrelationId::generate()).event_type(), "order.delivered");

        let cancelled = paid.cancel(Utc::now()).unwrap();
        assert!(matches!(cancelled.ship(&one, "s1", &how, Utc::now()), Err(Refused::Conflict(_))));
        let mut bad = new;
        bad.shipping_address.as_mut().unwrap().country = "ZZ".into();
        assert!(into_order(bad, Utc::now()).is_err(), "the Order service checks the address too");
    }

    #[test]
    fn ship_fields_are_one_to_64_characters() {
        let ok = ShipRequest { carrier: " UPS ".into(), tracking_number: "x".repeat(64) }.checked().unwrap();
        assert_eq!(ok.carrier, "UPS");
        assert!(ShipRequest { carrier: "  ".into(), tracking_number: "1".into() }.checked().is_err());
        assert!(ShipRequest { carrier: "UPS".into(), tracking_number: "x".repeat(65) }.checked().is_err());
    }

    #[test]
    fn a_new_order_is_placed_with_history_and_a_checked_total() {
        let (order, reservation) = into_order(new_order(), Utc::now()).unwrap();
        assert_eq!((order.status, order.history.len(), reservation.as_str()), (OrderStatus::Placed, 1, "rsv_1"));
        let mut wrong = new_order();
        wrong.total_cents = 1;
        assert!(into_order(wrong, Utc::now()).is_err());
        let mut empty = new_order();
        empty.items.clear();
        assert!(into_order(empty, Utc::now()).is_err());
        let mut overflowing = new_order();
        overflowing.items[0].unit_price_cents = u64::MAX;
        assert!(into_order(overflowing, Utc::now()).is_err(), "an error, not a panic");
        // Found by fuzzing: any currency was taken (and shown on the order).
        let mut euros = new_order();
        euros.currency = "EUR".into();
        assert!(into_order(euros, Utc::now()).is_err(), "money is USD");
        let mut long = new_order();
        long.order_id = "o".repeat(129);
        assert!(into_order(long, Utc::now()).is_err());
    }

    #[test]
    fn placed_and_paid_orders_cancel_others_do_not() {
        let (order, _) = into_order(new_order(), Utc::now()).unwrap();
        let cancelled = order.cancel(Utc::now()).unwrap();
        assert_eq!(cancelled.status, OrderStatus::Cancelled);
        assert_eq!(
            cancelled.history.iter().map(|h| h.status).collect::<Vec<_>>(),
            [OrderStatus::Placed, OrderStatus::Cancelled]
        );
        assert!(cancelled.cancel(Utc::now()).is_err());
        let mut failed = order.clone();
        failed.status = OrderStatus::PaymentFailed;
        assert!(failed.cancel(Utc::now()).is_err());
        let event = order.created("rsv_1", &CorrelationId::generate());
        assert_eq!(event.event_type(), "order.created");
    }
}
