//! Fuzzing of the parsers that take outside input: request bodies, SQS messages and their
//! event envelopes, correlation ids and list cursors. Each must give its documented answer
//! for anything at all, never panic.

use std::cell::RefCell;
use std::collections::HashMap;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{HeaderMap, HeaderValue};
use lambda_http::{Body, Request, RequestExt};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::batch::handle_batch;
use crate::correlation::{self, CorrelationId};
use crate::events::{Envelope, Event, Role};
use crate::http::{MAX_BODY_BYTES, Reply, handle, json_body, not_null};
use crate::pagination::{decode_cursor, encode_cursor, page_request};
use testkit::props::{any_json, block_on, mutated, number, persisted, schema_integer, text};

/// A body with what the services' bodies have: strings, a bounded number, an enum, an
/// optional field that must not be `null`, and a list of nested objects.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    name: String,
    #[serde(default, deserialize_with = "not_null", skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    quantity: u32,
    role: Role,
    lines: Vec<Line>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    product_id: String,
    quantity: u32,
}

fn valid_order() -> Value {
    json!({"name": "Dune", "note": "a gift", "quantity": 2, "role": "customer",
           "lines": [{"product_id": "prd_a", "quantity": 1}, {"product_id": "prd_b", "quantity": 3}]})
}

fn request(bytes: Vec<u8>) -> Request {
    Request::new(Body::Binary(bytes))
}

/// Bytes a client might send: noise (mostly invalid UTF-8), JSON with a few bytes changed,
/// deep nesting, numbers no type holds, and bodies either side of the size limit.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    let corrupted = (mutated(valid_order()), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4))
        .prop_map(|(value, changes)| {
            let mut bytes = value.to_string().into_bytes();
            for (at, byte) in changes {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            bytes
        });
    let nested = (1usize..20_000, prop::sample::select(vec!["[", "{\"a\":", "[{\"lines\":"]))
        .prop_map(|(depth, open)| open.repeat(depth).into_bytes());
    let huge_number = "-?[0-9]{19,400}(\\.[0-9]{1,40})?([eE][+-]?[0-9]{1,6})?"
        .prop_map(|n| format!(r#"{{"name":"x","quantity":{n},"role":"seller","lines":[]}}"#).into_bytes());
    let around_the_limit = (-3i64..=3).prop_map(|off| {
        let frame = r#"{"name":"","quantity":1,"role":"seller","lines":[]}"#;
        let pad = (MAX_BODY_BYTES as i64 + off - frame.len() as i64) as usize;
        format!(r#"{{"name":"{}","quantity":1,"role":"seller","lines":[]}}"#, "x".repeat(pad)).into_bytes()
    });
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..300),
        2 => mutated(valid_order()).prop_map(|v| v.to_string().into_bytes()),
        2 => corrupted,
        1 => nested,
        1 => huge_number,
        1 => around_the_limit,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..persisted() })]
    /// Any bytes: the body as sent, or 413 above the limit and 400 for anything else.
    #[test]
    fn fuzz_json_body_bytes(bytes in body_bytes()) {
        // Through the edge, which checks the size of every body before a handler reads it.
        let echo = |request: Request| async move { json_body::<Order>(&request).map(|order| Reply::ok(&order)) };
        let response = block_on(handle(&echo, request(bytes.clone()))).expect("infallible");
        let answer: Value = serde_json::from_slice(response.body().as_ref()).expect("a JSON answer");
        let oversized = bytes.len() > MAX_BODY_BYTES;
        if response.status() == 200 {
            prop_assert!(!oversized);
            let sent: Value = serde_json::from_slice(&bytes)
                .map_err(|e| TestCaseError::fail(format!("accepted a body that is not JSON: {e}")))?;
            prop_assert_eq!(answer, schema_integers(sent), "read as something else");
        } else {
            prop_assert_eq!(response.status().as_u16(), if oversized { 413 } else { 400 }, "{}", answer["detail"]);
            prop_assert!(!answer["detail"].as_str().unwrap_or_default().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..persisted() })]
    /// Any JSON document: what was sent, exactly (no other shape or type read into it), or 400.
    #[test]
    fn fuzz_json_body_values(value in prop_oneof![any_json(), mutated(valid_order())]) {
        let outcome = json_body::<Order>(&request(value.to_string().into_bytes()));
        match outcome {
            Ok(order) => {
                prop_assert_eq!(serde_json::to_value(&order).unwrap(), schema_integers(value), "read as something else")
            }
            Err(problem) => prop_assert_eq!(problem.status.as_u16(), 400, "{}", problem.detail),
        }
    }
}

/// `value` as JSON Schema reads its numbers: one of integral value (`2.0`) is an integer.
fn schema_integers(value: Value) -> Value {
    match value {
        Value::Number(n) => schema_integer(&Value::Number(n.clone())).map_or(Value::Number(n), |i| json!(i)),
        Value::Array(items) => Value::Array(items.into_iter().map(schema_integers).collect()),
        Value::Object(fields) => Value::Object(fields.into_iter().map(|(k, v)| (k, schema_integers(v))).collect()),
        other => other,
    }
}

/// The envelopes of every SQS sample in `events/`.
fn sample_envelopes() -> Vec<Value> {
    let mut envelopes = Vec::new();
    for entry in std::fs::read_dir(testkit::requests::events_dir()).expect("events/") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if name.starts_with("sqs-") && name.ends_with(".json") {
            let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
            for record in event["Records"].as_array().expect("Records") {
                envelopes.push(serde_json::from_str(record["body"].as_str().expect("a body")).expect("an envelope"));
            }
        }
    }
    assert!(envelopes.len() >= Event::TYPES.len(), "a sample per event type");
    envelopes
}

/// A message body: a sample envelope as it is, edited at random places, or with another
/// (known or unknown) `type`; arbitrary JSON; arbitrary text; or none.
fn message_body() -> impl Strategy<Value = Option<String>> {
    let samples = sample_envelopes();
    let mut types: Vec<String> = Event::TYPES.iter().map(|t| (*t).to_owned()).collect();
    types.extend(["order.teleported", "", "ORDER.CREATED", "order.created "].map(str::to_owned));
    let retyped = (prop::sample::select(samples.clone()), prop::sample::select(types)).prop_map(|(mut envelope, t)| {
        envelope["type"] = t.into();
        envelope
    });
    let edited = prop::sample::select(samples.clone()).prop_flat_map(mutated);
    prop_oneof![
        1 => prop::sample::select(samples).prop_map(|e| Some(e.to_string())),
        4 => edited.prop_map(|e| Some(e.to_string())),
        1 => retyped.prop_map(|e| Some(e.to_string())),
        1 => any_json().prop_map(|v| Some(v.to_string())),
        1 => text().prop_map(Some),
        1 => Just(None),
    ]
}

fn message() -> impl Strategy<Value = SqsMessage> {
    let receive_count = prop::option::of(prop_oneof![text(), "[0-9]{1,25}"]);
    let arn = prop::option::of(prop_oneof![text(), Just("arn:aws:sqs:us-east-1:123456789012:q".to_owned())]);
    (message_body(), receive_count, arn).prop_map(|(body, receive_count, arn)| {
        let mut message = SqsMessage::default();
        message.body = body;
        message.event_source_arn = arn;
        if let Some(count) = receive_count {
            message.attributes.insert("ApproximateReceiveCount".into(), count);
        }
        message
    })
}

/// The contract's "unknown event type": a JSON object whose `type` is a string the
/// catalogue does not have.
fn has_unknown_type(body: &str) -> bool {
    let Ok(Value::Object(members)) = serde_json::from_str::<Value>(body) else { return false };
    members.get("type").and_then(Value::as_str).is_some_and(|t| !Event::TYPES.contains(&t))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..persisted() })]
    /// Any batch: every message is skipped (unknown type), handled, or reported, exactly
    /// once and in order; the handler sees only envelopes that are the message's and
    /// round-trip.
    #[test]
    fn fuzz_sqs_batches(
        messages in prop::collection::vec(message(), 1..6),
        failing in prop::collection::vec(any::<bool>(), 1..6),
    ) {
        let mut batch = SqsEvent::default();
        batch.records = messages.clone();
        for (i, message) in batch.records.iter_mut().enumerate() {
            message.message_id = Some(format!("m{i}"));
        }
        let calls = RefCell::new(Vec::new());
        let handler = |envelope: Envelope| {
            let mut calls = calls.borrow_mut();
            let fail = failing[calls.len() % failing.len()];
            calls.push(envelope);
            async move { if fail { Err("refused") } else { Ok(()) } }
        };
        let response = block_on(handle_batch(batch, &handler));
        let calls = calls.into_inner();

        let mut expected_calls = Vec::new();
        let mut expected_failures = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            let body = message.body.as_deref().unwrap_or_default();
            if has_unknown_type(body) {
                continue;
            }
            match serde_json::from_str::<Envelope>(body) {
                Ok(envelope) => {
                    if failing[expected_calls.len() % failing.len()] {
                        expected_failures.push(format!("m{i}"));
                    }
                    expected_calls.push(envelope);
                }
                Err(_) => expected_failures.push(format!("m{i}")),
            }
        }
        prop_assert_eq!(&calls, &expected_calls, "the handler saw other envelopes");
        for envelope in &calls {
            let again: Envelope = serde_json::from_value(serde_json::to_value(envelope).unwrap())
                .map_err(|e| TestCaseError::fail(format!("does not round-trip: {e}")))?;
            prop_assert_eq!(&again, envelope);
        }
        let reported: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        prop_assert_eq!(reported, expected_failures);
    }
}

/// The contract's pattern: 1-64 of `[A-Za-z0-9._-]`.
fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.chars().count()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..persisted() })]
    /// Any header: a valid id, the caller's when theirs is valid.
    #[test]
    fn fuzz_correlation_ids(
        header in prop::option::of(prop_oneof![text(), "[A-Za-z0-9._-]{0,70}"]),
        raw in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let id = CorrelationId::from_header(header.as_deref());
        prop_assert!(is_valid_id(id.as_str()), "{:?}", id);
        if let Some(sent) = header.as_deref().filter(|sent| is_valid_id(sent)) {
            prop_assert_eq!(id.as_str(), sent);
        }
        // The same through an HTTP header holding any bytes a header value may hold.
        if let Ok(value) = HeaderValue::from_bytes(&raw) {
            let mut headers = HeaderMap::new();
            headers.insert(correlation::HEADER, value);
            let id = CorrelationId::from_headers(&headers);
            prop_assert!(is_valid_id(id.as_str()), "{:?}", id);
            if let Some(sent) = std::str::from_utf8(&raw).ok().filter(|s| is_valid_id(s)) {
                prop_assert_eq!(id.as_str(), sent);
            }
        }
    }
}

fn strings(key: &HashMap<String, AttributeValue>) -> HashMap<String, String> {
    key.iter().map(|(k, v)| (k.clone(), v.as_s().cloned().unwrap_or_default())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..persisted() })]
    /// Any cursor: the key it encodes (a non-empty object of strings) or 400.
    #[test]
    fn fuzz_cursors(
        cursor in prop_oneof![
            text(),
            "[A-Za-z0-9_-]{0,60}",
            prop_oneof![any_json(), prop::collection::hash_map(text(), text(), 0..4).prop_map(|m| json!(m))]
                .prop_map(|v| URL_SAFE_NO_PAD.encode(v.to_string())),
        ],
        limit in prop::option::of(prop_oneof![text(), number().prop_map(|n| n.to_string())]),
    ) {
        let decoded = URL_SAFE_NO_PAD.decode(&cursor).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        let expected = decoded.as_ref().and_then(Value::as_object).filter(|m| !m.is_empty()).and_then(|m| {
            m.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect::<Option<HashMap<_, _>>>()
        });
        match decode_cursor(&cursor) {
            Ok(key) => {
                prop_assert_eq!(Some(strings(&key)), expected.clone());
                prop_assert_eq!(strings(&decode_cursor(&encode_cursor(&key)).unwrap()), strings(&key), "round trip");
            }
            Err(problem) => {
                prop_assert_eq!(problem.status.as_u16(), 400);
                prop_assert!(expected.is_none());
            }
        }
        // Both query parameters of a list request together.
        let mut query = HashMap::from([("cursor".to_owned(), cursor.clone())]);
        if let Some(limit) = &limit {
            query.insert("limit".to_owned(), limit.clone());
        }
        let listed = page_request(&Request::default().with_query_string_parameters(QueryMap::from(query)));
        // An integer as JSON Schema has it (`2.0` is one), written as a JSON number.
        let json_integer = |text: &str| {
            let number: f64 = serde_json::from_str(text).ok().filter(|_| text.trim() == text)?;
            (number.fract() == 0.0 && number.abs() < 1e9).then_some(number as i32)
        };
        let wanted = match limit.as_deref() {
            None => Some(20),
            Some(text) => text.parse::<i32>().ok().or_else(|| json_integer(text)).filter(|n| (1..=100).contains(n)),
        };
        // `cursor=` (empty) is the first page.
        let start = if cursor.is_empty() { Some(None) } else { expected.clone().map(Some) };
        match listed {
            Ok(page) => {
                prop_assert_eq!(Some(page.limit), wanted);
                prop_assert_eq!(Some(page.start.map(|s| strings(&s))), start);
            }
            Err(problem) => {
                prop_assert_eq!(problem.status.as_u16(), 400);
                prop_assert!(wanted.is_none() || start.is_none());
            }
        }
    }
}
