//! Fuzzing of the Payment routes that read a body or a path parameter: any JSON, the sample
//! authorization edited at random, any payment id, through the HTTP edge against the
//! in-memory store and the fake gateway.

use proptest::prelude::*;
use serde_json::Value;
use testkit::requests::{call, sample, with_body, with_path};

use crate::clients::Fake;
use crate::handlers::internal::{authorize, void};
use crate::store::memory::MemoryStore;

use testkit::props::{assert_contract, block_on, body, json_of, path_parameter, persisted};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..persisted() })]
    /// `POST /internal/payments/authorize`: 201 for a test token that authorizes, 402
    /// for the declined one, 400 for any other token, another currency or anything that
    /// is not a request.
    #[test]
    fn fuzz_authorize(body_text in body(json_of(&sample("http-post-internal-authorize.json")))) {
        let store = MemoryStore::default();
        let request = with_body(sample("http-post-internal-authorize.json"), &body_text);
        let response = block_on(call(&|r| authorize(&store, &Fake, r), request));
        assert_contract(&response)?;
        let sent: Value = serde_json::from_str(&body_text).unwrap();
        let status = response.status().as_u16();
        match sent.get("payment_token").and_then(Value::as_str) {
            Some("tok_visa" | "tok_mastercard" | "tok_settlementFails") => prop_assert!([201, 400].contains(&status)),
            Some("tok_chargeDeclined") => prop_assert!([402, 400].contains(&status)),
            _ => prop_assert_eq!(status, 400),
        }
        if sent.get("currency").is_some_and(|c| c != "USD") {
            prop_assert_eq!(status, 400, "money is USD (docs/api.md): {}", body_text);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..persisted() })]
    /// `POST /internal/payments/{payment_id}/void`: 200 for an authorized (or voided)
    /// payment, 404 for any other id.
    #[test]
    fn fuzz_void(payment_id in path_parameter(&["known"]), twice in any::<bool>()) {
        let store = MemoryStore::default();
        let request = sample("http-post-internal-authorize.json");
        let authorized = block_on(call(&|r| authorize(&store, &Fake, r), request));
        prop_assert_eq!(authorized.status().as_u16(), 201);
        let known = testkit::requests::body(&authorized)["payment_id"].as_str().unwrap().to_owned();
        let payment_id = if payment_id == "known" { known.clone() } else { payment_id };
        let voiding = || {
            let request = with_path(sample("http-post-internal-void.json"), "payment_id", &payment_id);
            block_on(call(&|r| void(&store, &Fake, r), request))
        };
        if twice {
            assert_contract(&voiding())?;
        }
        let response = voiding();
        assert_contract(&response)?;
        let expected = if payment_id == known { 200 } else { 404 };
        prop_assert_eq!(response.status().as_u16(), expected, "{}", payment_id);
    }
}
