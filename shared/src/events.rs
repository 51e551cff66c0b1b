//! The event catalogue of docs/events.md: a CloudEvents 1.0 envelope around one typed payload
//! per event type. The envelope's `type` selects the payload, so a consumer matches on
//! [`Event`] and never looks at strings. Unknown extra fields are accepted everywhere.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::correlation::CorrelationId;

/// A CloudEvents 1.0 JSON envelope, as published to SNS and received as an SQS body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Envelope {
    #[cfg_attr(feature = "schema", schemars(extend("const" = "1.0")))]
    pub specversion: String,
    /// Unique per event; consumers deduplicate on it.
    pub id: String,
    pub source: String,
    pub time: DateTime<Utc>,
    #[cfg_attr(feature = "schema", schemars(extend("const" = "application/json")))]
    pub datacontenttype: String,
    /// `X-Correlation-Id` of the request that caused the event (1-64 of `[A-Za-z0-9._-]`).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,64}$")))]
    pub correlationid: String,
    /// `type` and `data`, adjacently tagged.
    #[serde(flatten)]
    pub event: Event,
}

impl Envelope {
    /// Wraps `event` in a new envelope with a fresh ULID id and the current time.
    pub fn new(event: Event, correlation_id: &CorrelationId) -> Self {
        Self {
            specversion: "1.0".into(),
            id: ulid::Ulid::generate().to_string(),
            source: event.source().into(),
            time: Utc::now(),
            datacontenttype: "application/json".into(),
            correlationid: correlation_id.as_str().into(),
            event,
        }
    }

    pub fn event_type(&self) -> &'static str {
        self.event.event_type()
    }
}

/// The five SNS topics of docs/events.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    UserEvents,
    OrderEvents,
    PaymentEvents,
    InventoryEvents,
    SellerEvents,
}

impl Topic {
    pub const ALL: [Topic; 5] =
        [Topic::UserEvents, Topic::OrderEvents, Topic::PaymentEvents, Topic::InventoryEvents, Topic::SellerEvents];

    /// The environment variable that carries this topic's ARN (set in template.yaml).
    pub fn arn_env_var(self) -> &'static str {
        match self {
            Topic::UserEvents => "USER_EVENTS_TOPIC_ARN",
            Topic::OrderEvents => "ORDER_EVENTS_TOPIC_ARN",
            Topic::PaymentEvents => "PAYMENT_EVENTS_TOPIC_ARN",
            Topic::InventoryEvents => "INVENTORY_EVENTS_TOPIC_ARN",
            Topic::SellerEvents => "SELLER_EVENTS_TOPIC_ARN",
        }
    }
}

/// The catalogue's event types, each written once: its name (the envelope's `type`), its
/// payload type (the variant has the payload's name) and its topic.
macro_rules! catalogue {
    ($($name:literal => $variant:ident on $topic:ident,)*) => {
        /// Every event of the catalogue: `type` in the envelope, payload in `data`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(tag = "type", content = "data")]
        pub enum Event {
            $(#[serde(rename = $name)] $variant($variant),)*
        }

        impl Event {
            /// Every event type name of the catalogue.
            pub const TYPES: [&'static str; [$($name),*].len()] = [$($name),*];

            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => $name,)*
                }
            }

            /// The topic the event is published on.
            pub fn topic(&self) -> Topic {
                match self {
                    $(Event::$variant(_) => Topic::$topic,)*
                }
            }
        }
    };
}

catalogue! {
    "user.registered" => UserRegistered on UserEvents,
    "order.created" => OrderCreated on OrderEvents,
    "order.completed" => OrderCompleted on OrderEvents,
    "order.cancelled" => OrderCancelled on OrderEvents,
    "order.shipped" => OrderShipped on OrderEvents,
    "order.delivered" => OrderDelivered on OrderEvents,
    "payment.completed" => PaymentCompleted on PaymentEvents,
    "payment.failed" => PaymentFailed on PaymentEvents,
    "payment.refunded" => PaymentRefunded on PaymentEvents,
    "inventory.updated" => InventoryUpdated on InventoryEvents,
    "seller.approved" => SellerApproved on SellerEvents,
    "seller.suspended" => SellerSuspended on SellerEvents,
}

impl Event {
    /// The CloudEvents `source`: the service that publishes this type.
    pub fn source(&self) -> &'static str {
        match self.topic() {
            Topic::UserEvents => "ecommerce.auth",
            Topic::OrderEvents => "ecommerce.order",
            Topic::PaymentEvents => "ecommerce.payment",
            Topic::InventoryEvents | Topic::SellerEvents => "ecommerce.seller",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Seller,
    // Approves and suspends sellers; never self-registered (one per stack, made by devstack).
    Admin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserRegistered {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderItem {
    pub product_id: String,
    pub seller_id: String,
    pub quantity: u32,
    pub unit_price_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderCreated {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<OrderItem>,
    pub total_cents: u64,
    pub payment_id: String,
    pub reservation_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderCompleted {
    pub order_id: String,
    pub user_id: String,
    pub total_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderCancelled {
    pub order_id: String,
    pub user_id: String,
    pub reason: String,
    pub payment_id: String,
    pub reservation_id: String,
}

/// One shipment of an order shipped by its seller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderShipped {
    pub order_id: String,
    pub user_id: String,
    pub shipment_id: String,
    pub seller_id: String,
    pub carrier: String,
    pub tracking_number: String,
}

/// One shipment of an order delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderDelivered {
    pub order_id: String,
    pub user_id: String,
    pub shipment_id: String,
    pub seller_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PaymentCompleted {
    pub payment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub amount_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PaymentFailed {
    pub payment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PaymentRefunded {
    pub payment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub amount_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InventoryUpdated {
    pub product_id: String,
    pub seller_id: String,
    /// Units that can still be bought after the change.
    pub stock: u32,
    pub reason: String,
}

/// An admin approved a seller (first approval, or again after a suspension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SellerApproved {
    pub seller_id: String,
    pub name: String,
    pub email: String,
}

/// An admin suspended a seller: their products are off sale until approved again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SellerSuspended {
    pub seller_id: String,
    pub name: String,
    pub email: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::new(
            Event::OrderCompleted(OrderCompleted { order_id: "o1".into(), user_id: "u1".into(), total_cents: 1299 }),
            &CorrelationId::parse("c-123").unwrap(),
        )
    }

    #[test]
    fn envelope_has_the_cloudevents_shape() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "order.completed");
        assert_eq!(json["source"], "ecommerce.order");
        assert_eq!(json["correlationid"], "c-123");
        assert_eq!(json["data"]["total_cents"], 1299);
        assert_eq!(json["id"].as_str().unwrap().len(), 26);
    }

    #[test]
    fn unknown_fields_are_accepted() {
        let mut json = serde_json::to_value(sample()).unwrap();
        json["traceparent"] = "00-abc".into();
        json["data"]["coupon"] = "X".into();
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, sample_with_id(&back));
    }

    fn sample_with_id(other: &Envelope) -> Envelope {
        Envelope { id: other.id.clone(), time: other.time, ..sample() }
    }

    #[test]
    fn every_type_name_is_the_envelopes_type_of_its_event() {
        assert_eq!(Event::TYPES.len(), 12);
        let event = sample().event;
        assert!(Event::TYPES.contains(&event.event_type()));
        assert_eq!(serde_json::to_value(&event).unwrap()["type"], event.event_type());
    }

    #[test]
    fn an_unknown_type_or_a_wrong_payload_is_rejected() {
        let mut json = serde_json::to_value(sample()).unwrap();
        json["type"] = "order.exploded".into();
        assert!(serde_json::from_value::<Envelope>(json).is_err());
        let mut json = serde_json::to_value(sample()).unwrap();
        json["data"]["total_cents"] = (-5).into();
        assert!(serde_json::from_value::<Envelope>(json).is_err());
    }
}
