//! Every sample in `events/` is the SQS event a consumer receives; each must parse into the
//! typed envelope and serialise back to the same JSON, and every event type has one.

use std::collections::BTreeSet;
use std::path::PathBuf;

use aws_lambda_events::sqs::SqsEvent;
use shared::{Envelope, Event};

fn samples() -> Vec<(PathBuf, SqsEvent)> {
    let dir = testkit::requests::events_dir();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("events/ exists") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("sqs-") && name.ends_with(".json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let event: SqsEvent = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            found.push((path, event));
        }
    }
    found
}

#[test]
fn every_sample_round_trips_through_the_envelope() {
    for (path, event) in samples() {
        assert!(!event.records.is_empty(), "{}", path.display());
        for record in event.records {
            let body = record.body.expect("a body");
            let original: serde_json::Value = serde_json::from_str(&body).unwrap();
            let envelope: Envelope = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(serde_json::to_value(&envelope).unwrap(), original, "{}", path.display());
            let attribute = &record.message_attributes["event_type"];
            assert_eq!(attribute.string_value.as_deref(), Some(envelope.event_type()), "{}", path.display());
            let correlation = &record.message_attributes["correlation_id"];
            assert_eq!(correlation.string_value.as_deref(), Some(envelope.correlationid.as_str()));
            assert_eq!(envelope.source, envelope.event.source());
        }
    }
}

#[test]
fn every_event_type_has_a_sample() {
    let covered: BTreeSet<String> = samples()
        .into_iter()
        .flat_map(|(_, event)| event.records)
        .map(|record| serde_json::from_str::<Envelope>(&record.body.unwrap()).unwrap().event_type().to_owned())
        .collect();
    let all: BTreeSet<String> = Event::TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(covered, all);
}

#[test]
fn every_http_sample_is_a_payload_2_0_request() {
    let dir = testkit::requests::events_dir();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("http-") {
            let text = std::fs::read_to_string(&path).unwrap();
            let event: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(event.version.as_deref(), Some("2.0"), "{name}");
            let route = event.route_key.unwrap_or_default();
            let method = event.request_context.http.method.as_str();
            // The $default route takes any method on any path.
            assert!(
                route == "$default" || route.starts_with(&format!("{method} /")),
                "{name}: route {route} is not a {method} route"
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}
