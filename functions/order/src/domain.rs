//! Orders: what an order is, how one is made of a checkout's `NewOrder` (shared::contracts),
//! the states it moves through (with its history), and the events those moves publish.
//! Pure rules: no AWS, no HTTP.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::contracts::{NewOrder, OrderLine};
use shared::events::{Event, OrderCancelled, OrderCreated, OrderItem};
use shared::{CURRENCY, CorrelationId, Envelope, Invalid};

/// The longest id (order, user, payment, reservation) an order takes: they become keys.
pub const MAX_ORDER_ID: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created, payment authorized.
    Placed,
    /// Payment settled.
    Paid,
    Cancelled,
    PaymentFailed,
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
    let order = Order {
        order_id: new.order_id,
        user_id: new.user_id,
        items: new.items,
        total_cents: new.total_cents,
        currency: new.currency,
        status: OrderStatus::Placed,
        payment_id: new.payment_id,
        created_at: now,
        updated_at: now,
        history: vec![StatusChange { status: OrderStatus::Placed, at: now }],
    };
    Ok((order, new.reservation_id))
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
        }
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
        }
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
