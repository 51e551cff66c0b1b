//! Notifications: which event gets which message, who gets it on which channel, and what a
//! delivery's record holds. Pure rules; the words are in `templates/` (crate::messages).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::Envelope;
use shared::events::Event;

/// Longest user-provided text (a name) a message quotes, in characters.
pub const MAX_QUOTED_CHARS: usize = 80;

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

impl Template {
    /// Its name in the API and in `templates/`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Welcome => "welcome",
            Self::OrderConfirmation => "order_confirmation",
            Self::PaymentReceipt => "payment_receipt",
            Self::PaymentFailed => "payment_failed",
            Self::OrderCancelled => "order_cancelled",
            Self::OrderShipped => "order_shipped",
            Self::OrderDelivered => "order_delivered",
            Self::SellerApproved => "seller_approved",
            Self::SellerSuspended => "seller_suspended",
        }
    }
}

/// In the order a notification goes out on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Push,
}

/// Where one delivery of a notification goes: the user's email address, their phone, or one
/// of their devices. A notification's deliveries are keyed by it (as text: `email`, `sms`,
/// `push:{device_id}`), so each device gets its own, claimed and recorded on its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Route {
    Email,
    Sms,
    Push(String),
}

impl Route {
    pub fn channel(&self) -> Channel {
        match self {
            Self::Email => Channel::Email,
            Self::Sms => Channel::Sms,
            Self::Push(_) => Channel::Push,
        }
    }
}

impl From<Route> for String {
    fn from(route: Route) -> Self {
        match route {
            Route::Email => "email".into(),
            Route::Sms => "sms".into(),
            Route::Push(device_id) => format!("push:{device_id}"),
        }
    }
}

impl TryFrom<String> for Route {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "email" => Ok(Self::Email),
            "sms" => Ok(Self::Sms),
            _ => match text.strip_prefix("push:") {
                Some(device_id) if !device_id.is_empty() => Ok(Self::Push(device_id.to_owned())),
                _ => Err(format!("{text:?} is not a delivery route")),
            },
        }
    }
}

/// The mobile push services SNS delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Platform {
    /// Firebase Cloud Messaging (SNS still calls it GCM).
    #[serde(rename = "GCM")]
    Gcm,
    #[serde(rename = "APNS")]
    Apns,
}

/// Longest device token the API takes, in characters.
pub const MAX_TOKEN_CHARS: usize = 4096;

/// Devices one user can register; a notification holds a delivery for each, and an item at
/// most 400 KB.
pub const MAX_DEVICES: usize = 10;

/// A registered device: its SNS platform endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub device_id: String,
    pub platform: Platform,
    pub endpoint_arn: String,
    pub created_at: DateTime<Utc>,
}

/// The device id of a platform endpoint: one endpoint per token and application, so
/// registering the same token again names the same device.
pub fn device_id(endpoint_arn: &str) -> String {
    let id = endpoint_arn.rsplit('/').next().unwrap_or(endpoint_arn);
    format!("dev_{}", id.replace('-', ""))
}

/// Who a user is, from `user.registered` or Auth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub user_id: String,
    pub email: String,
    pub name: String,
}

/// The channels a user chose (docs/api.md, Notification service), and their phone number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    pub email: bool,
    pub sms: bool,
    pub push: bool,
    pub phone_number: Option<String>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self { email: true, sms: false, push: false, phone_number: None }
    }
}

impl Preferences {
    /// Why these preferences cannot be kept, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if let Some(phone) = &self.phone_number
            && !is_e164(phone)
        {
            return Some(format!("phone_number {phone:?} is not an E.164 number such as +14155550123"));
        }
        (self.sms && self.phone_number.is_none()).then(|| "sms needs a phone_number".to_owned())
    }
}

/// `+`, a country code that does not start with 0, at most 15 digits in all.
fn is_e164(phone: &str) -> bool {
    phone.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len()) && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Planned, not yet claimed.
    Pending,
    /// Claimed by an attempt that is sending it (since `at`).
    Sending,
    Sent,
    Failed,
}

/// One channel's delivery of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub status: DeliveryStatus,
    pub provider_message_id: Option<String>,
    /// Why it failed, for whoever reads the table.
    #[serde(default)]
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

impl Delivery {
    pub fn new(status: DeliveryStatus, at: DateTime<Utc>) -> Self {
        Self { status, provider_message_id: None, reason: None, at }
    }

    pub fn is_settled(&self) -> bool {
        matches!(self.status, DeliveryStatus::Sent | DeliveryStatus::Failed)
    }
}

/// An address no email goes to any more (it bounced for good, or its owner complained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    pub address: String,
    /// `bounce` or `complaint`.
    pub reason: String,
    /// The SNS message that said so, when it had an id.
    pub feedback_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// Where a notification goes: fixed when it is made, so that a retry sends to the same place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Recipient {
    pub email: Option<String>,
    pub phone_number: Option<String>,
    /// The devices push goes to, by id.
    #[serde(default)]
    pub devices: BTreeMap<String, Device>,
}

/// A notification as stored: one per event, its deliveries one per route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub notification_id: String,
    pub user_id: String,
    pub template: Template,
    pub subject: String,
    /// The plain-text body (the email's text part, and what `GET /notifications` shows).
    pub body: String,
    pub html: String,
    /// The SMS (and push) text.
    pub short: String,
    pub event_id: String,
    pub created_at: DateTime<Utc>,
    pub to: Recipient,
    pub deliveries: BTreeMap<Route, Delivery>,
}

/// Where a notification goes for a user with `preferences` and `devices`.
pub fn routes(preferences: &Preferences, devices: &[Device]) -> Vec<Route> {
    let mut routes = Vec::new();
    if preferences.email {
        routes.push(Route::Email);
    }
    if preferences.sms && preferences.phone_number.is_some() {
        routes.push(Route::Sms);
    }
    if preferences.push {
        routes.extend(devices.iter().map(|d| Route::Push(d.device_id.clone())));
    }
    routes
}

/// Money as a customer reads it.
pub fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// `text` cut to [`MAX_QUOTED_CHARS`] characters (an ellipsis says it was cut).
pub fn quoted(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_QUOTED_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX_QUOTED_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

/// What an event calls for: the user it is about, the template and the template's values
/// (the contact's `name` is added when it is known).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub user_id: String,
    pub template: Template,
    pub values: Value,
}

/// The message an event calls for; `None` if it calls for none (`order.completed` and
/// `payment.refunded` follow a message already sent). `order.shipped` and `order.delivered`
/// are one per shipment, so an order from two sellers gets two of each.
pub fn message_for(envelope: &Envelope) -> Option<Message> {
    let (user_id, template, values) = match &envelope.event {
        Event::UserRegistered(e) => (&e.user_id, Template::Welcome, json!({"name": quoted(&e.name)})),
        Event::OrderCreated(e) => {
            let lines: Vec<Value> = e
                .items
                .iter()
                .map(|i| {
                    json!({
                        "product_id": i.product_id,
                        "quantity": i.quantity,
                        "unit_price": dollars(i.unit_price_cents),
                        "total": dollars(i.unit_price_cents * u64::from(i.quantity)),
                    })
                })
                .collect();
            let units: u32 = e.items.iter().map(|i| i.quantity).sum();
            (
                &e.user_id,
                Template::OrderConfirmation,
                json!({"order_id": e.order_id, "lines": lines, "units": units, "total": dollars(e.total_cents)}),
            )
        }
        Event::PaymentCompleted(e) => (
            &e.user_id,
            Template::PaymentReceipt,
            json!({"order_id": e.order_id, "payment_id": e.payment_id, "amount": dollars(e.amount_cents)}),
        ),
        Event::PaymentFailed(e) => {
            (&e.user_id, Template::PaymentFailed, json!({"order_id": e.order_id, "reason": quoted(&e.reason)}))
        }
        Event::OrderCancelled(e) => (
            &e.user_id,
            Template::OrderCancelled,
            json!({"order_id": e.order_id, "reason": quoted(&e.reason.replace('_', " "))}),
        ),
        Event::OrderShipped(e) => (
            &e.user_id,
            Template::OrderShipped,
            json!({
                "order_id": e.order_id,
                "shipment_id": e.shipment_id,
                "carrier": quoted(&e.carrier),
                "tracking_number": quoted(&e.tracking_number),
            }),
        ),
        Event::OrderDelivered(e) => {
            (&e.user_id, Template::OrderDelivered, json!({"order_id": e.order_id, "shipment_id": e.shipment_id}))
        }
        Event::SellerApproved(e) => (&e.seller_id, Template::SellerApproved, json!({"name": quoted(&e.name)})),
        Event::SellerSuspended(e) => {
            (&e.seller_id, Template::SellerSuspended, json!({"name": quoted(&e.name), "reason": quoted(&e.reason)}))
        }
        Event::OrderCompleted(_) | Event::PaymentRefunded(_) | Event::InventoryUpdated(_) => return None,
    };
    Some(Message { user_id: user_id.clone(), template, values })
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
            assert_eq!(message_for(&testkit::requests::sqs_envelope(name)).map(|m| m.template), template, "{name}");
        }
        let suspended = message_for(&testkit::requests::sqs_envelope("sqs-seller-suspended.json")).unwrap();
        assert_eq!(suspended.user_id, "usr_01JD4RY9K8J7H6G5F4E3D2C1B0", "the seller");
    }

    #[test]
    fn preferences_need_an_e164_number_for_sms() {
        let with = |sms, phone: Option<&str>| Preferences {
            sms,
            phone_number: phone.map(str::to_owned),
            ..Preferences::default()
        };
        assert_eq!(with(true, Some("+14155550123")).problem(), None);
        assert_eq!(with(false, None).problem(), None);
        assert!(with(true, None).problem().unwrap().contains("sms needs"));
        for bad in ["14155550123", "+04155550123", "+1", "+1415555012345678", "+1 415 555 0123", "+1415555012a"] {
            assert!(with(false, Some(bad)).problem().is_some(), "{bad}");
        }
        assert_eq!(routes(&with(true, Some("+14155550123")), &[]), [Route::Email, Route::Sms]);
        assert_eq!(routes(&Preferences { email: false, ..Preferences::default() }, &[]), []);
    }

    #[test]
    fn push_goes_to_each_device_when_chosen_and_routes_are_text() {
        let device = |id: &str| Device {
            device_id: id.into(),
            platform: Platform::Gcm,
            endpoint_arn: format!("arn:aws:sns:us-east-1:1:endpoint/GCM/app/{id}"),
            created_at: Utc::now(),
        };
        let devices = [device("dev_a"), device("dev_b")];
        let push = Preferences { email: false, push: true, ..Preferences::default() };
        assert_eq!(routes(&push, &devices), [Route::Push("dev_a".into()), Route::Push("dev_b".into())]);
        assert_eq!(routes(&Preferences::default(), &devices), [Route::Email], "push off: no device");
        for route in [Route::Email, Route::Sms, Route::Push("dev_a".into())] {
            let text = serde_json::to_value(&route).unwrap();
            assert_eq!(serde_json::from_value::<Route>(text).unwrap(), route);
        }
        assert_eq!(serde_json::to_value(Route::Push("dev_a".into())).unwrap(), "push:dev_a");
        assert!(serde_json::from_value::<Route>("push:".into()).is_err());
        assert_eq!(
            device_id("arn:aws:sns:us-east-1:1:endpoint/GCM/shop-push/5e3e9847-3183-3f18-a7e8-671c3a57d4b3"),
            "dev_5e3e984731833f18a7e8671c3a57d4b3"
        );
    }

    #[test]
    fn quoted_text_is_cut_at_the_limit() {
        assert_eq!(quoted("  Ada  "), "Ada");
        let long = "é".repeat(200);
        let cut = quoted(&long);
        assert_eq!(cut.chars().count(), MAX_QUOTED_CHARS);
        assert!(cut.ends_with('…'));
    }
}
