//! Fuzzing of the Order routes that read a body or a path parameter: any JSON, the sample
//! order edited at random, any order id, through the HTTP edge against the in-memory store.

use proptest::prelude::*;
use serde_json::Value;
use shared::events::Role;
use shared::publisher::MemoryPublisher;
use testkit::requests::{as_caller, call, sample, with_body, with_path};

use crate::handlers::internal::create;
use crate::handlers::orders::cancel;
use crate::store::memory::MemoryStore;

use testkit::props::{any_json, assert_contract, block_on, body, json_of, path_parameter, persisted};

/// The sample order's customer and id.
const CUSTOMER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";
const ORDER: &str = "ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E";

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..persisted() })]
    /// `POST /internal/orders`: 201 for a new order (with its `order.created`), 400 for
    /// anything that is not one (money in another currency too), and nothing published then.
    #[test]
    fn fuzz_create_order(body_text in body(json_of(&sample("http-post-internal-order.json")))) {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        let request = with_body(sample("http-post-internal-order.json"), &body_text);
        let response = block_on(call(&|r| create(&store, &publisher, r), request));
        assert_contract(&response)?;
        let published = publisher.published().len();
        let status = response.status().as_u16();
        match status {
            201 => prop_assert_eq!(published, 1),
            400 => prop_assert_eq!(published, 0),
            other => prop_assert!(false, "{}: {}", other, body_text),
        }
        let sent: Value = serde_json::from_str(&body_text).unwrap();
        if sent.get("currency").is_some_and(|c| c != "USD") {
            prop_assert_eq!(status, 400, "money is USD (docs/api.md): {}", body_text);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..persisted() })]
    /// `POST /orders/{order_id}/cancel`, whatever the body: 200 for the caller's placed
    /// order, 404 for any other id, 409 once cancelled.
    #[test]
    fn fuzz_cancel(
        order_id in path_parameter(&[ORDER]),
        body_text in any_json().prop_map(|v| v.to_string()),
        twice in any::<bool>(),
    ) {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        let placed = block_on(call(&|r| create(&store, &publisher, r), sample("http-post-internal-order.json")));
        prop_assert_eq!(placed.status().as_u16(), 201);
        let cancelling = || {
            let request = with_body(sample("http-post-cancel-order.json"), &body_text);
            let request = with_path(request, "order_id", &order_id);
            block_on(call(&|r| cancel(&store, &publisher, r), as_caller(request, CUSTOMER, Role::Customer)))
        };
        if twice {
            assert_contract(&cancelling())?;
        }
        let response = cancelling();
        assert_contract(&response)?;
        let expected = match (order_id == ORDER, twice) {
            (false, _) => 404,
            (true, false) => 200,
            (true, true) => 409,
        };
        prop_assert_eq!(response.status().as_u16(), expected, "{}", order_id);
    }
}
