//! Fuzzing of the cart routes that read a body: any JSON, sample bodies edited at random,
//! any product id and `Idempotency-Key`, through the HTTP edge against the scripted
//! downstream.

use lambda_http::http::HeaderValue;
use proptest::prelude::*;
use serde_json::Value;
use shared::events::Role;
use testkit::props::{assert_contract, block_on, body, json_of, path_parameter, persisted, schema_integer, text};
use testkit::requests::{as_caller, call, sample, with_body, with_path};

use crate::clients::fakes::Fake;
use crate::handlers::test_support::{USER, put};
use crate::handlers::{cart, checkout};
use crate::store::memory::MemoryStore;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..persisted() })]
    /// `PUT /cart/items/{product_id}`: 200 for a quantity of 0-99 (0 removes, so any id
    /// goes; `2.0` is 2, as in JSON Schema), 404 for a product the catalogue lacks, 400 for
    /// anything else.
    #[test]
    fn fuzz_set_item(
        body_text in body(json_of(&sample("http-put-cart-item.json"))),
        product_id in path_parameter(&["prd_a", "prd_b"]),
    ) {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
        let request = with_path(with_body(sample("http-put-cart-item.json"), &body_text), "product_id", &product_id);
        let request = as_caller(request, USER, Role::Customer);
        let response = block_on(call(&|request| cart::set_item(&store, &fake, request), request));
        assert_contract(&response)?;

        let sent: Value = serde_json::from_str(&body_text).unwrap();
        let quantity = sent.as_object().and_then(|o| o.get("quantity")).and_then(schema_integer);
        let expected = match quantity {
            Some(0) => 200,
            Some(1..=99) if product_id == "prd_a" => 200,
            Some(1..=99) => 404,
            _ => 400,
        };
        prop_assert_eq!(response.status().as_u16(), expected, "{}", body_text);
    }
}

/// `Idempotency-Key` values: none, visible ASCII of any length, any text, any bytes.
fn idempotency_key() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::weighted(
        0.8,
        prop_oneof![
            "[!-~]{0,70}".prop_map(String::into_bytes),
            text().prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..70),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..persisted() })]
    /// `POST /cart/checkout` with a cart of one product: 201 (402 for the declined token),
    /// 400 for a body without a string `payment_token`, with a shipping address that is not
    /// one, or a key that is not 1-64 visible ASCII characters.
    #[test]
    fn fuzz_checkout(body_text in body(json_of(&sample("http-post-checkout.json"))), key in idempotency_key()) {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
        prop_assert_eq!(block_on(put(&store, &fake, "prd_a", 2)).status(), 200);
        let mut request = with_body(sample("http-post-checkout.json"), &body_text);
        request.headers_mut().remove("idempotency-key");
        let header = key.as_deref().and_then(|k| HeaderValue::from_bytes(k).ok());
        if let Some(value) = header.clone() {
            request.headers_mut().insert("idempotency-key", value);
        }
        let request = as_caller(request, USER, Role::Customer);
        let response = block_on(call(&|request| checkout::checkout(&store, &fake, request), request));
        assert_contract(&response)?;

        let sent: Value = serde_json::from_str(&body_text).unwrap();
        let token = sent.as_object().and_then(|o| o.get("payment_token")).and_then(Value::as_str);
        // An address, when given, is checked (docs/api.md, Cart: 400 on a bad one).
        let address_ok = match sent.as_object().and_then(|o| o.get("shipping_address")) {
            None | Some(Value::Null) => true,
            Some(address) => serde_json::from_value::<shared::contracts::ShippingAddress>(address.clone())
                .is_ok_and(|a| a.checked().is_ok()),
        };
        let key_ok =
            header.is_none_or(|h| (1..=64).contains(&h.len()) && h.as_bytes().iter().all(u8::is_ascii_graphic));
        let expected = match token {
            Some(_) if !key_ok || !address_ok => 400,
            Some("tok_chargeDeclined") => 402,
            Some(_) => 201,
            None => 400,
        };
        prop_assert_eq!(response.status().as_u16(), expected, "{}", body_text);
    }
}
