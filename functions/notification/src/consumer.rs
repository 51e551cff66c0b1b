//! The notification-queue consumer: each event that calls for a message gets exactly one,
//! sent through the configured `Sender` and stored for `GET /notifications`. The event id
//! is claimed first (shared::idempotency), so a redelivered event sends nothing again; and
//! the notification's id is the event's, so an attempt whose claim was lost after the work
//! (an outage at the wrong moment) finds it stored and sends nothing either.

use std::time::Duration;

use shared::events::Event;
use shared::idempotency::{IdempotencyStore, OnceError, key, once};
use shared::metrics::{self, Metric};
use shared::{CorrelationId, Envelope, Retry};

use crate::clients::{Directory, Sender};
use crate::domain::{Contact, Notification, message_for};
use crate::store::NotificationStore;

/// At most; in Lambda a claim lasts until its invocation ends (see `shared::idempotency::once`).
const LEASE: Duration = Duration::from_secs(60);

pub async fn handle<S, I, X, D>(
    store: &S,
    claims: &I,
    sender: &X,
    directory: &D,
    envelope: Envelope,
) -> Result<(), Retry>
where
    S: NotificationStore,
    I: IdempotencyStore,
    X: Sender,
    D: Directory,
{
    if let Event::UserRegistered(user) = &envelope.event {
        let contact = Contact { user_id: user.user_id.clone(), email: user.email.clone(), name: user.name.clone() };
        store.save_contact(&contact).await.map_err(Retry::because)?;
    }
    let Some((user_id, template, subject, body)) = message_for(&envelope) else { return Ok(()) };
    let correlation_id = CorrelationId::from_header(Some(&envelope.correlationid));
    let work = || async {
        let contact = match store.contact(&user_id).await.map_err(Retry::because)? {
            Some(contact) => contact,
            None => {
                let found = directory.user(&user_id, &correlation_id).await.map_err(Retry::because)?;
                let contact = found.ok_or_else(|| Retry::because(format!("no user {user_id}")))?;
                store.save_contact(&contact).await.map_err(Retry::because)?;
                contact
            }
        };
        let notification = Notification {
            notification_id: format!("ntf_{}", envelope.id),
            user_id: user_id.clone(),
            channel: sender.channel(),
            template,
            subject,
            body,
            event_id: envelope.id.clone(),
            created_at: chrono::Utc::now(),
        };
        // Stored first, once per event: a later attempt that finds it stored does not send again
        // (the price: a crash between storing and sending loses that one message).
        if !store.save(&notification).await.map_err(Retry::because)? {
            tracing::info!(notification_id = %notification.notification_id, "notification already stored and sent");
            return Ok(());
        }
        if let Err(error) = sender.send(&notification, &contact).await {
            store.remove(&notification).await.map_err(Retry::because)?;
            return Err(Retry::because(error));
        }
        metrics::count(Metric::NotificationsSent, ("Service", "notification"), 1);
        Ok(())
    };
    match once(claims, &key("notify", &envelope.id), LEASE, work).await {
        Ok(_) => Ok(()),
        Err(OnceError::Work(retry)) => Err(retry),
        Err(OnceError::Idempotency(error)) => Err(Retry::because(error)),
    }
}

/// The consumer against in-memory stores: samples replayed twice notify once.
#[cfg(test)]
mod tests {
    use shared::events::Role;
    use shared::idempotency::MemoryIdempotency;
    use shared::internal::CallError;
    use testkit::requests::{as_caller, body, call, sample};

    use super::*;
    use crate::clients::RecordingSender;
    use crate::domain::Template;
    use crate::store::memory::MemoryStore;

    struct NoDirectory;

    impl Directory for NoDirectory {
        async fn user(&self, _: &str, _: &CorrelationId) -> Result<Option<Contact>, CallError> {
            Err(CallError::Unavailable { service: "auth".into(), reason: "not in this test".into() })
        }
    }

    /// The sample `name`'s event, as the queue delivers it.
    async fn deliver(store: &MemoryStore, claims: &MemoryIdempotency, name: &str) -> Result<(), Retry> {
        handle(store, claims, &RecordingSender, &NoDirectory, testkit::requests::sqs_envelope(name)).await
    }

    fn templates(store: &MemoryStore) -> Vec<Template> {
        store.notifications.lock().unwrap().iter().map(|n| n.template).collect()
    }

    #[tokio::test]
    async fn every_sample_twice_notifies_once_each() {
        let (store, claims) = (MemoryStore::default(), MemoryIdempotency::default());
        let samples = [
            "sqs-user-registered.json",
            "sqs-order-created.json",
            "sqs-payment-completed.json",
            "sqs-order-completed.json",
            "sqs-payment-refunded.json",
        ];
        for _ in 0..2 {
            for name in samples {
                deliver(&store, &claims, name).await.unwrap();
            }
        }
        assert_eq!(templates(&store), [Template::Welcome, Template::OrderConfirmation, Template::PaymentReceipt]);

        let listed = call(
            &|request| crate::handlers::notifications::list(&store, request),
            as_caller(sample("http-get-notifications.json"), "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A", Role::Customer),
        )
        .await;
        let listed = body(&listed);
        assert_eq!(listed["items"].as_array().unwrap().len(), 3);
        assert_eq!(listed["items"][0]["template"], "payment_receipt", "newest first");
        assert!(listed["items"][0].get("user_id").is_none());
    }

    #[tokio::test]
    async fn an_attempt_whose_claim_was_lost_after_the_work_notifies_nothing_again() {
        let store = MemoryStore::default();
        let samples = ["sqs-user-registered.json", "sqs-order-created.json"];
        // The second run claims afresh, as after an outage that kept the first from recording
        // its claims as done: the stored notifications still stop a second message.
        for claims in [MemoryIdempotency::default(), MemoryIdempotency::default()] {
            for name in samples {
                deliver(&store, &claims, name).await.unwrap();
            }
        }
        assert_eq!(templates(&store), [Template::Welcome, Template::OrderConfirmation]);
    }

    #[tokio::test]
    async fn an_unknown_contact_is_retried_when_auth_cannot_answer() {
        let (store, claims) = (MemoryStore::default(), MemoryIdempotency::default());
        assert!(deliver(&store, &claims, "sqs-payment-failed.json").await.is_err());
        assert!(store.notifications.lock().unwrap().is_empty());
    }
}
