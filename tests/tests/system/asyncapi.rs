//! infra/asyncapi.yaml: it is what `make asyncapi` generates from the Rust event types, the
//! template and events/ (so nobody edits it by hand and it cannot go stale), and every sample
//! in events/ is a valid message of its type as the document describes it.

use std::collections::BTreeSet;

use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

fn checked_in() -> (String, Value) {
    let text = std::fs::read_to_string(devstack::repo_root().join("infra/asyncapi.yaml")).expect("infra/asyncapi.yaml");
    let document = serde_norway::from_str(&text).expect("YAML");
    (text, document)
}

/// A validator for one message's payload schema, its `$ref`s resolved inside the document.
fn payload_validator(document: &Value, message_id: &str) -> Validator {
    let mut root = json!({ "$ref": format!("#/components/messages/{message_id}/payload") });
    root["components"] = document["components"].clone();
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("{message_id}'s payload schema: {e}"))
}

/// The SQS bodies of events/sqs-*.json, as the files have them (not re-serialized).
fn sample_bodies() -> Vec<(String, Value)> {
    let dir = devstack::repo_root().join("events");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("sqs-") {
            continue;
        }
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for record in event["Records"].as_array().expect("Records") {
            let body = serde_json::from_str(record["body"].as_str().expect("a body")).expect("a JSON body");
            found.push((name.clone(), body));
        }
    }
    found
}

#[test]
fn the_checked_in_document_is_what_make_asyncapi_generates() {
    let root = devstack::repo_root();
    let template = devstack::template::Template::load(&root.join("template.yaml")).unwrap();
    let generated = devstack::asyncapi::yaml(&template, &root.join("events")).unwrap();
    let (checked_in, _) = checked_in();
    assert!(
        generated == checked_in,
        "infra/asyncapi.yaml is stale (the event types, template.yaml or events/ changed): run `make asyncapi`"
    );
}

#[test]
fn the_document_covers_every_event_topic_and_consumer_queue() {
    let (_, document) = checked_in();
    assert_eq!(document["asyncapi"], "3.0.0");
    let messages: BTreeSet<String> = document["components"]["messages"].as_object().unwrap().keys().cloned().collect();
    let expected: BTreeSet<String> = shared::Event::TYPES.iter().map(|t| t.replace('.', "-")).collect();
    assert_eq!(messages, expected);
    let channels: BTreeSet<&str> = document["channels"].as_object().unwrap().keys().map(String::as_str).collect();
    for name in ["user-events", "order-events", "payment-events", "inventory-events", "seller-events"] {
        assert!(channels.contains(name), "topic {name}");
        assert_eq!(document["operations"][format!("publish-{name}")]["action"], "send");
    }
    // docs/events.md's queue table: which event types each queue receives.
    let expected_queues = [
        ("notification-queue", &["order.", "payment.", "user.", "seller."][..]),
        ("ai-events-queue", &["order.", "payment.", "user."]),
        ("seller-updates-queue", &["order.created", "order.cancelled", "user.registered"]),
        ("payment-settlement-queue", &["order.created", "order.cancelled"]),
        ("cart-events-queue", &["user.registered", "order.completed"]),
        ("order-updates-queue", &["payment.completed", "payment.failed", "inventory.updated"]),
    ];
    for (queue, filters) in expected_queues {
        let received: BTreeSet<String> = document["channels"][queue]["messages"]
            .as_object()
            .unwrap_or_else(|| panic!("{queue}"))
            .keys()
            .cloned()
            .collect();
        let wanted: BTreeSet<String> = shared::Event::TYPES
            .iter()
            .filter(|t| filters.iter().any(|f| if f.ends_with('.') { t.starts_with(f) } else { *t == f }))
            .map(|t| t.replace('.', "-"))
            .collect();
        assert_eq!(received, wanted, "{queue}");
        assert_eq!(document["operations"][format!("consume-{queue}")]["action"], "receive");
    }
}

#[test]
fn every_sample_is_a_valid_message_of_its_type() {
    let (_, document) = checked_in();
    let samples = sample_bodies();
    let types: BTreeSet<&str> = samples.iter().map(|(_, body)| body["type"].as_str().unwrap()).collect();
    assert_eq!(types, shared::Event::TYPES.into_iter().collect(), "one sample per event type at least");
    for (file, body) in &samples {
        let id = body["type"].as_str().unwrap().replace('.', "-");
        let validator = payload_validator(&document, &id);
        let errors: Vec<String> =
            validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
    }
}

#[test]
fn the_schemas_reject_what_the_consumers_would_reject() {
    let (_, document) = checked_in();
    let (file, sample) = sample_bodies().into_iter().find(|(_, b)| b["type"] == "order.created").unwrap();
    let validator = payload_validator(&document, "order-created");
    assert!(validator.is_valid(&sample), "{file}");
    type Mutation = fn(&mut Value);
    let broken: [(&str, Mutation); 6] = [
        ("a negative total", |b| b["data"]["total_cents"] = json!(-1)),
        ("no payment id", |b| drop(b["data"].as_object_mut().unwrap().remove("payment_id"))),
        ("a line without a quantity", |b| drop(b["data"]["items"][0].as_object_mut().unwrap().remove("quantity"))),
        ("another publisher", |b| b["source"] = json!("ecommerce.cart")),
        ("no correlation id", |b| drop(b.as_object_mut().unwrap().remove("correlationid"))),
        ("a time that is not RFC 3339", |b| b["time"] = json!("yesterday")),
    ];
    for (what, mutate) in broken {
        let mut body = sample.clone();
        mutate(&mut body);
        assert!(!validator.is_valid(&body), "{what} passed the schema");
        // The schema and the Rust type agree: what the schema refuses, deserializing refuses.
        if what != "another publisher" {
            assert!(serde_json::from_value::<shared::Envelope>(body).is_err(), "{what} deserialized");
        }
    }
    let mut extra = sample.clone();
    extra["data"]["coupon"] = json!("X");
    extra["traceparent"] = json!("00-abc");
    assert!(validator.is_valid(&extra), "unknown extra fields are allowed (docs/events.md)");
}
