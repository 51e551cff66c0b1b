//! Against the emulator, after `provision`: each event type published through the shared
//! publisher lands in exactly the queues events.md routes it to, once, as a raw envelope.

use std::collections::{BTreeMap, BTreeSet};

use shared::Envelope;
use shared::publisher::Publish;
use system_tests::{QUEUES, drain, emulator, provision, publisher, sample_envelopes, unique_stack_name};

/// events.md, "Queues": which event types each queue receives.
fn expected_routes() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let order = ["order.created", "order.completed", "order.cancelled"];
    let payment = ["payment.completed", "payment.failed", "payment.refunded"];
    let user = ["user.registered"];
    let everything_but_inventory: BTreeSet<_> = order.iter().chain(&payment).chain(&user).copied().collect();
    BTreeMap::from([
        ("NotificationQueue", everything_but_inventory.clone()),
        ("AiEventsQueue", everything_but_inventory),
        ("SellerUpdatesQueue", BTreeSet::from(["order.created", "order.cancelled"])),
        ("PaymentSettlementQueue", BTreeSet::from(["order.created", "order.cancelled"])),
        ("CartEventsQueue", BTreeSet::from(["user.registered", "order.completed"])),
        ("OrderUpdatesQueue", BTreeSet::from(["payment.completed", "payment.failed", "inventory.updated"])),
    ])
}

#[tokio::test]
async fn every_event_type_reaches_exactly_its_queues() {
    let config = emulator().await;
    let stack = provision(&config, &unique_stack_name()).await.expect("provisioned");
    let publisher = publisher(&config, &stack);
    let samples = sample_envelopes();
    for envelope in &samples {
        publisher.publish(envelope).await.expect("published");
    }

    let sqs = aws_sdk_sqs::Client::new(&config);
    let mut routed = BTreeMap::new();
    for queue in QUEUES {
        let messages = drain(&sqs, stack.reference(queue).unwrap()).await.unwrap();
        let mut types = BTreeSet::new();
        for message in messages {
            // Raw delivery: the body is the envelope itself, not an SNS notification.
            let envelope: Envelope = serde_json::from_str(message.body().unwrap())
                .unwrap_or_else(|e| panic!("{queue}: body is not an envelope ({e}): {:?}", message.body()));
            let original = samples.iter().find(|s| s.id == envelope.id).expect("one of ours");
            assert_eq!(&envelope, original, "{queue}: delivered unchanged");
            let attributes = message.message_attributes().expect("message attributes");
            assert_eq!(attributes["event_type"].string_value(), Some(envelope.event_type()));
            assert_eq!(attributes["correlation_id"].string_value(), Some(envelope.correlationid.as_str()));
            assert!(types.insert(envelope.event_type()), "{queue}: {} delivered twice", envelope.event_type());
        }
        routed.insert(queue, types);
    }
    assert_eq!(routed, expected_routes());
}
