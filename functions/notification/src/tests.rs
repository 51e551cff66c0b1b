//! The consumer against in-memory stores: samples replayed twice notify once.

use shared::CorrelationId;
use shared::events::Role;
use shared::idempotency::MemoryIdempotency;
use shared::internal::CallError;
use testkit::requests::{as_caller, body, call, sample};

use crate::consumer::{Directory, handle};
use crate::domain::{Contact, Template};
use crate::sender::RecordingSender;
use crate::store::MemoryStore;

struct NoDirectory;

impl Directory for NoDirectory {
    async fn user(&self, _: &str, _: &CorrelationId) -> Result<Option<Contact>, CallError> {
        Err(CallError::Unavailable { service: "auth".into(), reason: "not in this test".into() })
    }
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
            handle(&store, &claims, &RecordingSender, &NoDirectory, testkit::requests::sqs_envelope(name))
                .await
                .unwrap();
        }
    }
    let templates: Vec<Template> = store.notifications.lock().unwrap().iter().map(|n| n.template).collect();
    assert_eq!(templates, [Template::Welcome, Template::OrderConfirmation, Template::PaymentReceipt]);

    let listed = call(
        &|r, c| crate::handlers::list(&store, r, c),
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
            handle(&store, &claims, &RecordingSender, &NoDirectory, testkit::requests::sqs_envelope(name))
                .await
                .unwrap();
        }
    }
    let templates: Vec<Template> = store.notifications.lock().unwrap().iter().map(|n| n.template).collect();
    assert_eq!(templates, [Template::Welcome, Template::OrderConfirmation]);
}

#[tokio::test]
async fn an_unknown_contact_is_retried_when_auth_cannot_answer() {
    let (store, claims) = (MemoryStore::default(), MemoryIdempotency::default());
    assert!(
        handle(
            &store,
            &claims,
            &RecordingSender,
            &NoDirectory,
            testkit::requests::sqs_envelope("sqs-payment-failed.json")
        )
        .await
        .is_err()
    );
    assert!(store.notifications.lock().unwrap().is_empty());
}
