//! Notifications: which event gets which message, and what a message says. Pure rules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::events::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    Welcome,
    OrderConfirmation,
    PaymentReceipt,
    PaymentFailed,
    OrderCancelled,
    OrderShipped,
    OrderDelivered,
    SellerApproved,
    SellerSuspended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Push,
}

/// Where a user is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub user_id: String,
    pub email: String,
    pub name: String,
}

/// A notification as the API shows it (docs/api.md, Notifications).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub notification_id: String,
    #[serde(skip_serializing)]
    #[serde(default)]
    pub user_id: String,
    pub channel: Channel,
    pub template: Template,
    pub subject: String,
    pub body: String,
    pub event_id: String,
    pub created_at: DateTime<Utc>,
}

fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// The user an event is about and the message it calls for; `None` if it calls for none
/// (`order.completed` and `payment.refunded` follow a message already sent). `order.shipped`
/// and `order.delivered` are one per shipment, so an order from two sellers gets two of each.
pub fn message_for(envelope: &Envelope) -> Option<(String, Template, String, String)> {
    Some(match &envelope.event {
        Event::UserRegistered(e) => (
            e.user_id.clone(),
            Template::Welcome,
            "Welcome to the shop".into(),
            format!("Hello {}, your account is ready.", e.name),
        ),
        Event::OrderCreated(e) => (
            e.user_id.clone(),
            Template::OrderConfirmation,
            format!("Order {} confirmed", e.order_id),
            format!(
                "We have your order {} of {} items, {} in all.",
                e.order_id,
                e.items.iter().map(|i| i.quantity).sum::<u32>(),
                dollars(e.total_cents)
            ),
        ),
        Event::PaymentCompleted(e) => (
            e.user_id.clone(),
            Template::PaymentReceipt,
            format!("Receipt for order {}", e.order_id),
            format!("We received {} for order {} (payment {}).", dollars(e.amount_cents), e.order_id, e.payment_id),
        ),
        Event::PaymentFailed(e) => (
            e.user_id.clone(),
            Template::PaymentFailed,
            format!("Payment for order {} failed", e.order_id),
            format!(
                "We could not take the payment for order {}: {}. The order is cancelled; nothing was charged.",
                e.order_id, e.reason
            ),
        ),
        Event::OrderCancelled(e) => (
            e.user_id.clone(),
            Template::OrderCancelled,
            format!("Order {} cancelled", e.order_id),
            format!("Order {} is cancelled ({}). Any payment is given back.", e.order_id, e.reason.replace('_', " ")),
        ),
        Event::OrderShipped(e) => (
            e.user_id.clone(),
            Template::OrderShipped,
            format!("Order {} shipped", e.order_id),
            format!(
                "A parcel of your order {} is on its way with {}, tracking number {} (shipment {}).",
                e.order_id, e.carrier, e.tracking_number, e.shipment_id
            ),
        ),
        Event::OrderDelivered(e) => (
            e.user_id.clone(),
            Template::OrderDelivered,
            format!("Order {} delivered", e.order_id),
            format!("A parcel of your order {} was delivered (shipment {}).", e.order_id, e.shipment_id),
        ),
        Event::SellerApproved(e) => (
            e.seller_id.clone(),
            Template::SellerApproved,
            "Your seller account is approved".into(),
            format!("Hello {}, your seller account is approved: the products you list are on sale.", e.name),
        ),
        Event::SellerSuspended(e) => (
            e.seller_id.clone(),
            Template::SellerSuspended,
            "Your seller account is suspended".into(),
            format!(
                "Hello {}, your seller account is suspended ({}). Your products are off sale until it is approved again.",
                e.name, e.reason
            ),
        ),
        Event::OrderCompleted(_) | Event::PaymentRefunded(_) | Event::InventoryUpdated(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_gets_its_template() {
        let expected = [
            ("sqs-user-registered.json", Some(Template::Welcome)),
            ("sqs-order-created.json", Some(Template::OrderConfirmation)),
            ("sqs-payment-completed.json", Some(Template::PaymentReceipt)),
            ("sqs-payment-failed.json", Some(Template::PaymentFailed)),
            ("sqs-order-cancelled.json", Some(Template::OrderCancelled)),
            ("sqs-order-shipped.json", Some(Template::OrderShipped)),
            ("sqs-order-delivered.json", Some(Template::OrderDelivered)),
            ("sqs-seller-approved.json", Some(Template::SellerApproved)),
            ("sqs-seller-suspended.json", Some(Template::SellerSuspended)),
            ("sqs-order-completed.json", None),
            ("sqs-payment-refunded.json", None),
        ];
        for (name, template) in expected {
            assert_eq!(message_for(&testkit::requests::sqs_envelope(name)).map(|m| m.1), template, "{name}");
        }
        let (_, _, _, body) = message_for(&testkit::requests::sqs_envelope("sqs-order-created.json")).unwrap();
        assert!(body.contains("$70.98"), "{body}");
        let (_, _, subject, body) = message_for(&testkit::requests::sqs_envelope("sqs-order-shipped.json")).unwrap();
        assert!(subject.contains("ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E"), "{subject}");
        assert!(body.contains("UPS") && body.contains("1Z999AA10123456784"), "carrier and tracking number: {body}");
        let (user_id, _, _, body) = message_for(&testkit::requests::sqs_envelope("sqs-seller-suspended.json")).unwrap();
        assert_eq!(user_id, "usr_01JD4RY9K8J7H6G5F4E3D2C1B0", "the seller");
        assert!(body.contains("counterfeit"), "the reason: {body}");
    }
}
