//! The notification-queue consumer: each event that calls for a message gets one notification
//! (its id is the event's, so a redelivered event finds it made), and each of its deliveries —
//! one per channel the user enabled when it was made — goes out at most once:
//!
//! 1. claim: `pending` → `sending` (a conditional write; a second attempt that loses it is
//!    retried by the queue and then finds the outcome);
//! 2. send;
//! 3. record: `sent` with the provider's message id, or `failed` if the provider refused it
//!    for good; a transient refusal puts it back to `pending` and the queue retries it.
//!
//! A claim older than an invocation can live is an attempt that ended between claim and
//! record: it may have sent, so it is recorded `failed` and not sent again. A device whose
//! endpoint SNS disabled gets `failed` and is removed.

use chrono::{TimeDelta, Utc};
use shared::events::Event;
use shared::metrics::{self, Metric};
use shared::{CorrelationId, Envelope, Retry};

use crate::clients::{Channels, Directory, Endpoints, SendError};
use crate::domain::{Contact, Delivery, DeliveryStatus, Message, Notification, Recipient, Route, message_for, routes};
use crate::feedback::canonical;
use crate::handlers::devices::forget;
use crate::messages::{Rendered, render};
use crate::store::NotificationStore;

/// Longer than an invocation lives (the template's Timeout, 10 s): a claim this old is dead.
const LEASE: TimeDelta = TimeDelta::seconds(15);

/// The ports [`handle`] uses besides the store.
pub struct Ports<'a, C, E, D> {
    pub channels: &'a C,
    pub endpoints: &'a E,
    pub directory: &'a D,
}

pub async fn handle<S, C, E, D>(store: &S, ports: &Ports<'_, C, E, D>, envelope: Envelope) -> Result<(), Retry>
where
    S: NotificationStore,
    C: Channels,
    E: Endpoints,
    D: Directory,
{
    if let Event::UserRegistered(user) = &envelope.event {
        let contact = Contact { user_id: user.user_id.clone(), email: user.email.clone(), name: user.name.clone() };
        store.save_contact(&contact).await.map_err(Retry::because)?;
    }
    let Some(message) = message_for(&envelope) else { return Ok(()) };
    let notification = notification(store, ports.directory, &message, &envelope).await?;
    let mut retry = Ok(());
    for (route, delivery) in &notification.deliveries {
        if let Err(error) = deliver(store, ports, &notification, route, delivery).await {
            retry = Err(error);
        }
    }
    retry
}

/// The event's notification: stored already, or made now from the user's contact and
/// preferences.
async fn notification<S: NotificationStore, D: Directory>(
    store: &S,
    directory: &D,
    message: &Message,
    envelope: &Envelope,
) -> Result<Notification, Retry> {
    let user_id = &message.user_id;
    let notification_id = format!("ntf_{}", envelope.id);
    if let Some(made) = store.notification(user_id, &notification_id).await.map_err(Retry::because)? {
        return Ok(made);
    }
    let contact = match store.contact(user_id).await.map_err(Retry::because)? {
        Some(contact) => contact,
        None => {
            let correlation_id = CorrelationId::from_header(Some(&envelope.correlationid));
            let found = directory.user(user_id, &correlation_id).await.map_err(Retry::because)?;
            let contact = found.ok_or_else(|| Retry::because(format!("no user {user_id}")))?;
            store.save_contact(&contact).await.map_err(Retry::because)?;
            contact
        }
    };
    let preferences = store.preferences(user_id).await.map_err(Retry::because)?.unwrap_or_default();
    let devices = match preferences.push {
        true => store.devices(user_id).await.map_err(Retry::because)?,
        false => Vec::new(),
    };
    let rendered = render(message, &contact.name).map_err(Retry::because)?;
    let now = Utc::now();
    let suppressed = store.suppressed(&canonical(&contact.email)).await.map_err(Retry::because)?;
    let planned = |route: &Route| match route {
        Route::Email if suppressed => Delivery {
            reason: Some("the address is suppressed: it bounced for good or its owner complained".into()),
            ..Delivery::new(DeliveryStatus::Failed, now)
        },
        _ => Delivery::new(DeliveryStatus::Pending, now),
    };
    let notification = Notification {
        notification_id,
        user_id: user_id.clone(),
        template: message.template,
        subject: rendered.subject,
        body: rendered.text,
        html: rendered.html,
        short: rendered.short,
        event_id: envelope.id.clone(),
        created_at: now,
        deliveries: routes(&preferences, &devices).into_iter().map(|r| (r.clone(), planned(&r))).collect(),
        to: Recipient {
            email: Some(contact.email),
            phone_number: preferences.phone_number,
            devices: devices.into_iter().map(|d| (d.device_id.clone(), d)).collect(),
        },
    };
    if store.save(&notification).await.map_err(Retry::because)? {
        return Ok(notification);
    }
    // Another attempt made it meanwhile: its deliveries are the ones.
    let made = store.notification(user_id, &notification.notification_id).await.map_err(Retry::because)?;
    made.ok_or_else(|| Retry::because(format!("notification {} was made and is gone", notification.notification_id)))
}

/// The delivery of `notification` on `route`, at most once.
async fn deliver<S, C, E, D>(
    store: &S,
    ports: &Ports<'_, C, E, D>,
    notification: &Notification,
    route: &Route,
    delivery: &Delivery,
) -> Result<(), Retry>
where
    S: NotificationStore,
    C: Channels,
    E: Endpoints,
{
    let id = &notification.notification_id;
    let now = Utc::now();
    match delivery.status {
        DeliveryStatus::Sent | DeliveryStatus::Failed => return Ok(()),
        DeliveryStatus::Sending if now - delivery.at < LEASE => {
            return Err(Retry::because(format!("the {route:?} delivery of {id} is being sent by another attempt")));
        }
        DeliveryStatus::Sending => {
            let reason = "the attempt that claimed it ended before recording the outcome: it may have gone out, so it is not sent again";
            tracing::warn!(notification_id = %id, ?route, "{reason}");
            let failed = Delivery { reason: Some(reason.into()), ..Delivery::new(DeliveryStatus::Failed, now) };
            store.move_delivery(notification, route, delivery, &failed).await.map_err(Retry::because)?;
            return Ok(());
        }
        DeliveryStatus::Pending => {}
    }
    let claim = Delivery::new(DeliveryStatus::Sending, now);
    if !store.move_delivery(notification, route, delivery, &claim).await.map_err(Retry::because)? {
        return Err(Retry::because(format!("the {route:?} delivery of {id} was claimed by another attempt")));
    }
    let rendered = Rendered {
        subject: notification.subject.clone(),
        text: notification.body.clone(),
        html: notification.html.clone(),
        short: notification.short.clone(),
    };
    let missing = |what: &str| Err(SendError::Permanent(format!("no {what} to send to")));
    let to = &notification.to;
    let device = match route {
        Route::Push(device_id) => to.devices.get(device_id),
        _ => None,
    };
    let sent = match (route, to, device) {
        (Route::Email, Recipient { email: Some(to), .. }, _) => ports.channels.email(to, &rendered).await,
        (Route::Email, ..) => missing("email address"),
        (Route::Sms, Recipient { phone_number: Some(to), .. }, _) => ports.channels.sms(to, &rendered.short).await,
        (Route::Sms, ..) => missing("phone number"),
        (Route::Push(_), _, Some(device)) => ports.channels.push(device, &rendered).await,
        (Route::Push(_), _, None) => missing("device"),
    };
    let (outcome, gone) = match sent {
        Ok(message_id) => {
            metrics::count(Metric::NotificationsSent, ("Service", "notification"), 1);
            tracing::info!(notification_id = %id, ?route, %message_id, "notification sent");
            let sent =
                Delivery { provider_message_id: Some(message_id), ..Delivery::new(DeliveryStatus::Sent, Utc::now()) };
            (sent, false)
        }
        Err(error @ (SendError::Permanent(_) | SendError::Gone(_))) => {
            tracing::warn!(notification_id = %id, ?route, %error, "delivery refused for good");
            let gone = matches!(error, SendError::Gone(_));
            (Delivery { reason: Some(error.to_string()), ..Delivery::new(DeliveryStatus::Failed, Utc::now()) }, gone)
        }
        Err(SendError::Transient(reason)) => {
            // Not sent: back to pending, for the queue's next attempt.
            let pending = Delivery::new(DeliveryStatus::Pending, Utc::now());
            store.move_delivery(notification, route, &claim, &pending).await.map_err(Retry::because)?;
            return Err(Retry::because(reason));
        }
    };
    store.move_delivery(notification, route, &claim, &outcome).await.map_err(Retry::because)?;
    // Its endpoint is gone: so is the device. If that fails, the next push finds it gone again.
    if let (true, Some(device)) = (gone, device) {
        match forget(store, ports.endpoints, &notification.user_id, device).await {
            Ok(removed) => tracing::info!(device_id = %device.device_id, removed, "device of a gone endpoint removed"),
            Err(error) => tracing::warn!(device_id = %device.device_id, %error, "a gone device stays for now"),
        }
    }
    Ok(())
}

/// The consumer against in-memory stores and channels.
#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use shared::events::Role;
    use shared::internal::CallError;
    use testkit::requests::{as_caller, body, call, sample};

    use super::*;
    use crate::clients::EndpointError;
    use crate::domain::{Channel, Device, Platform, Preferences, Template};
    use crate::store::memory::MemoryStore;

    const USER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";
    const PHONE: &str = "+14155550123";

    struct NoDirectory;

    impl Directory for NoDirectory {
        async fn user(&self, _: &str, _: &CorrelationId) -> Result<Option<Contact>, CallError> {
            Err(CallError::Unavailable { service: "auth".into(), reason: "not in this test".into() })
        }
    }

    /// Records what it sends; answers each send with the next scripted error, if any.
    #[derive(Default)]
    struct Recorded {
        sent: Mutex<Vec<(Channel, String, String)>>,
        errors: Mutex<Vec<SendError>>,
    }

    impl Recorded {
        fn send(&self, channel: Channel, to: &str, text: &str) -> Result<String, SendError> {
            if let Some(error) = self.errors.lock().unwrap().pop() {
                return Err(error);
            }
            let mut sent = self.sent.lock().unwrap();
            sent.push((channel, to.to_owned(), text.to_owned()));
            Ok(format!("msg-{}", sent.len()))
        }

        fn sent(&self) -> Vec<(Channel, String, String)> {
            self.sent.lock().unwrap().clone()
        }
    }

    impl Channels for Recorded {
        async fn email(&self, to: &str, message: &Rendered) -> Result<String, SendError> {
            self.send(Channel::Email, to, &message.subject)
        }

        async fn sms(&self, phone_number: &str, text: &str) -> Result<String, SendError> {
            self.send(Channel::Sms, phone_number, text)
        }

        async fn push(&self, device: &Device, message: &Rendered) -> Result<String, SendError> {
            self.send(Channel::Push, &device.endpoint_arn, &message.short)
        }
    }

    /// Records the endpoints it removes.
    #[derive(Default)]
    struct Removed(Mutex<Vec<String>>);

    impl Endpoints for Removed {
        async fn register(&self, _: Platform, _: &str) -> Result<String, EndpointError> {
            unreachable!("the consumer registers no device")
        }

        async fn remove(&self, endpoint_arn: &str) -> Result<(), EndpointError> {
            self.0.lock().unwrap().push(endpoint_arn.to_owned());
            Ok(())
        }
    }

    async fn handle_with(store: &MemoryStore, channels: &Recorded, envelope: Envelope) -> Result<(), Retry> {
        let ports = Ports { channels, endpoints: &Removed::default(), directory: &NoDirectory };
        handle(store, &ports, envelope).await
    }

    async fn deliver(store: &MemoryStore, channels: &Recorded, name: &str) -> Result<(), Retry> {
        handle_with(store, channels, testkit::requests::sqs_envelope(name)).await
    }

    /// The sample events' customer, known from their registration, with push on.
    async fn with_push(store: &MemoryStore) {
        let contact = Contact { user_id: USER.into(), email: "ada@example.com".into(), name: "Ada".into() };
        store.save_contact(&contact).await.unwrap();
        store
            .save_preferences(USER, &Preferences { email: false, push: true, ..Preferences::default() })
            .await
            .unwrap();
    }

    fn device(n: u32) -> Device {
        let endpoint_arn = format!("arn:aws:sns:us-east-1:000000000000:endpoint/GCM/shop-push/0000-{n}");
        Device {
            device_id: crate::domain::device_id(&endpoint_arn),
            platform: Platform::Gcm,
            endpoint_arn,
            created_at: Utc::now(),
        }
    }

    fn stored(store: &MemoryStore) -> Vec<Notification> {
        store.notifications.lock().unwrap().clone()
    }

    async fn with_sms(store: &MemoryStore) {
        let preferences = Preferences { sms: true, phone_number: Some(PHONE.into()), ..Preferences::default() };
        store.save_preferences(USER, &preferences).await.unwrap();
    }

    #[tokio::test]
    async fn every_sample_twice_notifies_once_each_on_every_chosen_channel() {
        let (store, channels) = (MemoryStore::default(), Recorded::default());
        with_sms(&store).await;
        let samples = [
            "sqs-user-registered.json",
            "sqs-order-created.json",
            "sqs-payment-completed.json",
            "sqs-order-completed.json",
            "sqs-payment-refunded.json",
        ];
        for _ in 0..2 {
            for name in samples {
                deliver(&store, &channels, name).await.unwrap();
            }
        }
        let templates: Vec<Template> = stored(&store).iter().map(|n| n.template).collect();
        assert_eq!(templates, [Template::Welcome, Template::OrderConfirmation, Template::PaymentReceipt]);
        let sent = channels.sent();
        assert_eq!(sent.len(), 6, "email and SMS of each: {sent:?}");
        assert_eq!(sent.iter().filter(|(c, to, _)| *c == Channel::Sms && to == PHONE).count(), 3);
        assert!(stored(&store).iter().all(|n| n.deliveries.values().all(|d| d.status == DeliveryStatus::Sent)));

        let listed = call(
            &|request| crate::handlers::notifications::list(&store, request),
            as_caller(sample("http-get-notifications.json"), USER, Role::Customer),
        )
        .await;
        let listed = body(&listed);
        assert_eq!(listed["items"].as_array().unwrap().len(), 3);
        let newest = &listed["items"][0];
        assert_eq!(newest["template"], "payment_receipt", "newest first");
        assert_eq!(newest["channel"], "email");
        assert_eq!(newest["deliveries"][1]["channel"], "sms");
        assert_eq!(newest["deliveries"][1]["status"], "sent");
        assert!(newest["deliveries"][1]["provider_message_id"].is_string());
        assert!(newest.get("user_id").is_none() && newest.get("html").is_none() && newest.get("to").is_none());
    }

    #[tokio::test]
    async fn a_channel_turned_off_sends_nothing_on_it() {
        let (store, channels) = (MemoryStore::default(), Recorded::default());
        let preferences = Preferences { email: false, sms: true, phone_number: Some(PHONE.into()), push: false };
        store.save_preferences(USER, &preferences).await.unwrap();
        deliver(&store, &channels, "sqs-user-registered.json").await.unwrap();
        assert_eq!(channels.sent().iter().map(|s| s.0).collect::<Vec<_>>(), [Channel::Sms]);
    }

    #[tokio::test]
    async fn a_transient_refusal_is_retried_and_a_permanent_one_recorded_failed() {
        let (store, channels) = (MemoryStore::default(), Recorded::default());
        with_sms(&store).await;
        // Popped last first: the email is throttled, the SMS refused for good.
        *channels.errors.lock().unwrap() =
            vec![SendError::Permanent("InvalidParameter".into()), SendError::Transient("Throttling".into())];
        assert!(deliver(&store, &channels, "sqs-user-registered.json").await.is_err(), "the email is retried");
        let deliveries = &stored(&store)[0].deliveries;
        assert_eq!(deliveries[&Route::Email].status, DeliveryStatus::Pending);
        assert_eq!(deliveries[&Route::Sms].status, DeliveryStatus::Failed);
        deliver(&store, &channels, "sqs-user-registered.json").await.unwrap();
        let deliveries = &stored(&store)[0].deliveries;
        assert_eq!(deliveries[&Route::Email].status, DeliveryStatus::Sent);
        assert_eq!(deliveries[&Route::Sms].status, DeliveryStatus::Failed, "never retried");
        assert_eq!(channels.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_claim_held_by_another_attempt_is_retried_and_a_dead_one_is_not_sent_again() {
        let (store, channels) = (MemoryStore::default(), Recorded::default());
        // An attempt that claimed the email and has not recorded it yet.
        *channels.errors.lock().unwrap() = vec![SendError::Transient("first attempt".into())];
        assert!(deliver(&store, &channels, "sqs-user-registered.json").await.is_err());
        let notification = stored(&store).remove(0);
        let pending = notification.deliveries[&Route::Email].clone();
        let live = Delivery::new(DeliveryStatus::Sending, Utc::now());
        assert!(store.move_delivery(&notification, &Route::Email, &pending, &live).await.unwrap());
        assert!(deliver(&store, &channels, "sqs-user-registered.json").await.is_err(), "held: retried later");
        assert!(channels.sent().is_empty());

        // That attempt died: its claim outlives any invocation.
        let dead = Delivery::new(DeliveryStatus::Sending, Utc::now() - LEASE - TimeDelta::seconds(1));
        assert!(store.move_delivery(&notification, &Route::Email, &live, &dead).await.unwrap());
        deliver(&store, &channels, "sqs-user-registered.json").await.unwrap();
        assert!(channels.sent().is_empty(), "maybe sent: never twice");
        assert_eq!(stored(&store)[0].deliveries[&Route::Email].status, DeliveryStatus::Failed);
    }

    #[tokio::test]
    async fn a_suppressed_address_gets_no_more_email() {
        let (store, channels) = (MemoryStore::default(), Recorded::default());
        with_sms(&store).await;
        let registered = testkit::requests::sqs_envelope("sqs-user-registered.json");
        let Event::UserRegistered(user) = &registered.event else { unreachable!() };
        let bounce = serde_json::json!({
            "eventType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": user.email.to_uppercase()}]}
        });
        crate::feedback::handle(&store, bounce.to_string()).await.unwrap();
        handle_with(&store, &channels, registered.clone()).await.unwrap();
        assert_eq!(channels.sent().iter().map(|s| s.0).collect::<Vec<_>>(), [Channel::Sms], "SMS still goes");
        assert_eq!(stored(&store)[0].deliveries[&Route::Email].status, DeliveryStatus::Failed);
    }

    #[tokio::test]
    async fn an_unknown_contact_is_retried_when_auth_cannot_answer() {
        let (store, channels) = (MemoryStore::default(), Recorded::default());
        assert!(deliver(&store, &channels, "sqs-payment-failed.json").await.is_err());
        assert!(stored(&store).is_empty());
    }

    #[tokio::test]
    async fn push_goes_once_to_each_device_however_often_the_event_comes() {
        let (store, channels) = (MemoryStore::default(), Recorded::default());
        with_push(&store).await;
        let other = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1B";
        for (owner, n) in [(USER, 1), (USER, 2), (other, 3)] {
            assert!(store.register_device(owner, &device(n)).await.unwrap());
        }
        for _ in 0..3 {
            deliver(&store, &channels, "sqs-order-created.json").await.unwrap();
        }
        let sent = channels.sent();
        let endpoints: Vec<&str> = sent.iter().map(|(_, to, _)| to.as_str()).collect();
        assert_eq!(endpoints, [device(1).endpoint_arn, device(2).endpoint_arn], "the caller's two, once each");
        assert!(sent.iter().all(|(channel, _, text)| *channel == Channel::Push && text.contains("ord_")));
        let routes: Vec<Route> = stored(&store)[0].deliveries.keys().cloned().collect();
        assert_eq!(routes, [Route::Push(device(1).device_id), Route::Push(device(2).device_id)]);
    }

    #[tokio::test]
    async fn a_disabled_endpoint_fails_its_delivery_and_the_device_is_removed() {
        let (store, channels, removed) = (MemoryStore::default(), Recorded::default(), Removed::default());
        with_push(&store).await;
        assert!(store.register_device(USER, &device(1)).await.unwrap());
        *channels.errors.lock().unwrap() = vec![SendError::Gone("EndpointDisabled".into())];
        let ports = Ports { channels: &channels, endpoints: &removed, directory: &NoDirectory };
        handle(&store, &ports, testkit::requests::sqs_envelope("sqs-order-created.json")).await.unwrap();
        let delivery = &stored(&store)[0].deliveries[&Route::Push(device(1).device_id)];
        assert_eq!(delivery.status, DeliveryStatus::Failed);
        assert!(store.devices(USER).await.unwrap().is_empty(), "the device is gone");
        assert_eq!(*removed.0.lock().unwrap(), [device(1).endpoint_arn], "and its endpoint");
        handle(&store, &ports, testkit::requests::sqs_envelope("sqs-order-created.json")).await.unwrap();
        assert!(channels.sent().is_empty(), "never retried");
    }
}
