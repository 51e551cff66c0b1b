//! What the fuzz properties of every crate share: arbitrary JSON, sample bodies edited at
//! random places, the contract every HTTP answer keeps, and a config that bounds a property
//! and keeps the failures it finds.
//!
//! Nothing here names a `shared` type, so shared's own properties (`shared/src/fuzz.rs`) can
//! use it too: inside shared's unit tests `crate::Problem` and the `shared::Problem` testkit
//! is built against are different types, which JSON, strategies and responses never meet.

use std::future::Future;

use lambda_http::{Body, Response};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::Value;

/// The default config, with every failure's seed saved in the crate's
/// `proptest-regressions/` (and so replayed first by every later run). Each property sets
/// its own `cases` on top.
pub fn persisted() -> Config {
    Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..Config::default()
    }
}

/// Runs `future` to completion on a fresh runtime (a property's body is synchronous).
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(future)
}

/// `value` as the integer JSON Schema reads it: `2` and also `2.0` (a number of integral
/// value is an integer there, and the API follows JSON Schema). Exact below 2^53, which
/// covers every integer field the properties fuzz.
pub fn schema_integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let f = value.as_f64()?;
        (f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0).then_some(f as i64)
    })
}

/// Any text: control characters, other planes, and the edge cases parsers trip over.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter),
        1 => prop::sample::select(vec!["", " ", "\0", "null", "0", "-1", "true", "\u{202e}", "ü", "😀", "customer"])
            .prop_map(str::to_owned),
        1 => (1usize..2_000).prop_map(|n| "x".repeat(n)),
    ]
}

/// Any JSON number, biased towards the boundaries of the types bodies are read into.
pub fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![
            Value::from(0),
            Value::from(1),
            Value::from(-1),
            Value::from(99),
            Value::from(100),
            Value::from(u32::MAX),
            Value::from(u64::from(u32::MAX) + 1),
            Value::from(i64::MAX),
            Value::from(i64::MIN),
            Value::from(u64::MAX),
            Value::from(0.5),
            Value::from(2.0),
            Value::from(1e300),
        ]),
    ]
}

/// Any JSON value, nested a few levels deep.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf =
        prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String),];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// One change to a JSON document, at the node `at` picks (in pre-order).
#[derive(Debug, Clone)]
enum Edit {
    /// The node becomes another value.
    Replace(Index, Value),
    /// A member or element of the node goes.
    Remove(Index, Index),
    /// The node (an object or array) gains a member or element.
    Add(Index, String, Value),
    /// An object becomes the array of its values: `{"quantity": 2}` as `[2]`.
    Unwrap(Index),
    /// A string, number or bool becomes another of its kind (from the candidates given), so
    /// the document mostly stays valid and reaches the rules beyond parsing.
    Similar(Index, String, Value, bool),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), any_json()).prop_map(|(at, value)| Edit::Replace(at, value)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(at, which)| Edit::Remove(at, which)),
        1 => (any::<Index>(), text(), any_json()).prop_map(|(at, name, value)| Edit::Add(at, name, value)),
        1 => any::<Index>().prop_map(Edit::Unwrap),
        4 => (any::<Index>(), text(), number(), any::<bool>()).prop_map(|(at, t, n, b)| Edit::Similar(at, t, n, b)),
    ]
}

fn nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(nodes).sum(),
        Value::Object(members) => members.values().map(nodes).sum(),
        _ => 0,
    }
}

/// The `n`th node of `value` in pre-order (the root is 0).
fn node_mut(value: &mut Value, n: usize) -> Option<&mut Value> {
    fn walk<'a>(value: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
        if *n == 0 {
            return Some(value);
        }
        *n -= 1;
        match value {
            Value::Array(items) => items.iter_mut().find_map(|item| walk(item, n)),
            Value::Object(members) => members.values_mut().find_map(|member| walk(member, n)),
            _ => None,
        }
    }
    walk(value, &mut { n })
}

impl Edit {
    fn apply(self, document: &mut Value) {
        let count = nodes(document);
        let at = |index: &Index| index.index(count);
        match self {
            Edit::Replace(index, value) => {
                if let Some(node) = node_mut(document, at(&index)) {
                    *node = value;
                }
            }
            Edit::Remove(index, which) => match node_mut(document, at(&index)) {
                Some(Value::Array(items)) if !items.is_empty() => {
                    items.remove(which.index(items.len()));
                }
                Some(Value::Object(members)) if !members.is_empty() => {
                    let name = members.keys().nth(which.index(members.len())).cloned().unwrap_or_default();
                    members.remove(&name);
                }
                _ => {}
            },
            Edit::Add(index, name, value) => match node_mut(document, at(&index)) {
                Some(Value::Array(items)) => items.push(value),
                Some(Value::Object(members)) => {
                    members.insert(name, value);
                }
                _ => {}
            },
            Edit::Unwrap(index) => {
                if let Some(node) = node_mut(document, at(&index))
                    && let Value::Object(members) = node
                {
                    *node = Value::Array(std::mem::take(members).into_iter().map(|(_, v)| v).collect());
                }
            }
            Edit::Similar(index, text, number, flag) => match node_mut(document, at(&index)) {
                Some(node @ Value::String(_)) => *node = Value::String(text),
                Some(node @ Value::Number(_)) => *node = number,
                Some(node @ Value::Bool(_)) => *node = Value::Bool(flag),
                _ => {}
            },
        }
    }
}

/// `sample` with 1-3 random edits: "near-valid" documents, which get past a parser's first
/// checks far more often than arbitrary ones.
pub fn mutated(sample: Value) -> impl Strategy<Value = Value> {
    prop::collection::vec(edit(), 1..4).prop_map(move |edits| {
        let mut document = sample.clone();
        for edit in edits {
            edit.apply(&mut document);
        }
        document
    })
}

/// The JSON body of a request (a sample's, say).
pub fn json_of(request: &lambda_http::Request) -> Value {
    serde_json::from_slice(request.body().as_ref()).expect("a JSON body")
}

/// A request body: arbitrary JSON, or `sample` (an object) edited; as text.
pub fn body(sample: Value) -> impl Strategy<Value = String> {
    prop_oneof![1 => any_json(), 2 => mutated(sample)].prop_map(|value| value.to_string())
}

/// A path parameter: arbitrary text, or one of `known` (so the found branch runs too).
pub fn path_parameter(known: &[&str]) -> impl Strategy<Value = String> {
    let known: Vec<String> = known.iter().map(|k| (*k).to_owned()).collect();
    prop_oneof![text(), prop::sample::select(known)]
}

/// docs/api.md for any request: never a 5xx, and every 4xx is RFC 9457 problem+json with its own
/// status and the correlation id.
pub fn assert_contract(response: &Response<Body>) -> Result<(), TestCaseError> {
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let body: Value = serde_json::from_slice(response.body().as_ref())
        .map_err(|e| TestCaseError::fail(format!("a {status} answer without a JSON body: {e}")))?;
    prop_assert!(!status.is_server_error(), "{status}: {body}");
    if status.is_client_error() {
        prop_assert_eq!(content_type, "application/problem+json", "{}", body);
        prop_assert_eq!(body["status"].as_u64(), Some(u64::from(status.as_u16())), "{}", body);
        prop_assert!(body["type"].as_str().is_some_and(|t| t.starts_with("/problems/")), "{}", body);
        prop_assert!(body["title"].is_string() && body["detail"].is_string(), "{}", body);
        let echoed = response.headers().get("x-correlation-id").and_then(|v| v.to_str().ok());
        prop_assert_eq!(body["correlation_id"].as_str(), echoed, "{}", body);
    } else {
        prop_assert_eq!(content_type, "application/json", "{}", body);
    }
    Ok(())
}
