//! Payments through the Stripe adapter (functions/payment/src/clients/stripe.rs) on the local
//! stack, read back from localstripe (infra/localstripe, with testmode.py): each payment is
//! exactly one PaymentIntent, captured once its order is paid, canceled after a void or a
//! refused capture, refunded (once) after a cancel; a resumed authorization takes the
//! PaymentIntent it made and makes no second one. localstripe ignores Idempotency-Key, so a
//! duplicate call the claims let through would show here as a second PaymentIntent or Refund.

use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::LocalApi;
use system_tests::shop::{Shop, User};

const DEADLINE: Duration = Duration::from_secs(30);

/// localstripe, where emulator.sh started it (and devstack pointed the functions).
fn localstripe() -> String {
    std::env::var("STRIPE_API_BASE").unwrap_or_else(|_| "http://127.0.0.1:8420".into()).trim_end_matches('/').to_owned()
}

async fn stripe_get(path: &str, query: &[(&str, &str)]) -> Value {
    let url = reqwest::Url::parse_with_params(&format!("{}{path}", localstripe()), query).unwrap();
    let answer =
        reqwest::Client::new().get(url).bearer_auth("sk_test_local").send().await.expect("localstripe answers");
    assert_eq!(answer.status(), StatusCode::OK, "{path}");
    answer.json().await.unwrap()
}

/// The PaymentIntents whose metadata has `key` = `value` (Stripe's Search API).
async fn intents_with(key: &str, value: &str) -> Vec<Value> {
    let found = stripe_get("/v1/payment_intents/search", &[("query", &format!("metadata['{key}']:'{value}'"))]).await;
    found["data"].as_array().cloned().unwrap_or_default()
}

/// The one PaymentIntent of a payment (failing if there are none or several).
async fn the_intent_of(payment_id: &str) -> Value {
    let found = intents_with("payment_id", payment_id).await;
    let ids: Vec<&Value> = found.iter().map(|p| &p["id"]).collect();
    assert_eq!(found.len(), 1, "one PaymentIntent for {payment_id}, found {ids:?}");
    found.into_iter().next().unwrap()
}

/// The PaymentIntent of `payment_id` once it is `status` (the settlement runs in the background).
async fn intent_when(payment_id: &str, status: &str) -> Value {
    let seen = system_tests::eventually(DEADLINE, || async {
        let intent = the_intent_of(payment_id).await;
        (intent["status"] == status).then_some(intent)
    })
    .await;
    match seen {
        Some(intent) => intent,
        None => panic!("the PaymentIntent of {payment_id} never became {status}: {}", the_intent_of(payment_id).await),
    }
}

async fn refunds_of(intent_id: &str) -> Vec<Value> {
    let listed = stripe_get("/v1/refunds", &[("payment_intent", intent_id)]).await;
    listed["data"].as_array().cloned().unwrap_or_default()
}

/// A customer with `quantity` of `product` in the cart checks out with `token`.
async fn checkout(shop: &Shop, product: &str, quantity: u32, token: &str) -> (User, reqwest::Response) {
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, product, quantity).await;
    let answer = shop.checkout(&customer, token, Some(&format!("k-{}", ulid::Ulid::generate()))).await;
    (customer, answer)
}

/// A placed order, once its status is `status`, and its payment id.
async fn order_when(shop: &Shop, customer: &User, placed: reqwest::Response, status: &str) -> (Value, String) {
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    let order_id = order["order_id"].as_str().unwrap();
    let order = shop.wait_for_order(customer, order_id, DEADLINE, |o| o["status"] == status).await;
    assert_eq!(order["status"], status, "{order}");
    let payment_id = order["payment_id"].as_str().unwrap().to_owned();
    (order, payment_id)
}

#[tokio::test]
async fn each_payment_is_one_payment_intent_captured_voided_or_refunded_as_its_order_goes() {
    let shop = Shop::open(&[]).await;
    let seller = shop.register("seller").await;
    let dune = shop.product(&seller, 1299, 20).await;

    // Paid: captured, with the order's id and amount.
    for token in ["tok_visa", "tok_mastercard"] {
        let (customer, placed) = checkout(&shop, &dune, 2, token).await;
        let (order, payment_id) = order_when(&shop, &customer, placed, "paid").await;
        let intent = intent_when(&payment_id, "succeeded").await;
        assert_eq!(intent["metadata"]["order_id"], order["order_id"], "{token}");
        assert_eq!((intent["amount"].as_u64(), intent["currency"].as_str()), (Some(2 * 1299), Some("usd")));
        assert_eq!(intent["capture_method"], "manual");
        assert_eq!(intent["latest_charge"]["captured"], true, "{token}");
        assert!(refunds_of(intent["id"].as_str().unwrap()).await.is_empty());
    }

    // A capture the provider refuses (tok_settlementFails: an expired authorization): the
    // order ends payment_failed and nothing is held.
    let (customer, placed) = checkout(&shop, &dune, 1, "tok_settlementFails").await;
    let (_, payment_id) = order_when(&shop, &customer, placed, "payment_failed").await;
    assert_eq!(the_intent_of(&payment_id).await["status"], "canceled");

    // Cancelled after it was paid: refunded once, in full.
    let (customer, placed) = checkout(&shop, &dune, 1, "tok_visa").await;
    let (order, payment_id) = order_when(&shop, &customer, placed, "paid").await;
    let cancelled = shop.cancel(&customer, order["order_id"].as_str().unwrap()).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let refunded = system_tests::eventually(DEADLINE, || async {
        let payment = shop.payment_of(&customer, &order).await;
        (payment["status"] == "refunded").then_some(())
    })
    .await;
    assert!(refunded.is_some(), "the payment was not refunded");
    let intent = the_intent_of(&payment_id).await;
    assert_eq!(intent["status"], "succeeded", "captured, then refunded");
    assert_eq!(
        (intent["latest_charge"]["refunded"].as_bool(), intent["latest_charge"]["amount_refunded"].as_u64()),
        (Some(true), Some(1299))
    );
    assert_eq!(refunds_of(intent["id"].as_str().unwrap()).await.len(), 1, "one Refund");

    // Declined: 402 with Stripe's decline code; its PaymentIntent holds nothing.
    let (_, declined) = checkout(&shop, &dune, 1, "tok_chargeDeclined").await;
    assert_eq!(declined.status(), StatusCode::PAYMENT_REQUIRED);
    let problem: Value = declined.json().await.unwrap();
    assert!(problem["type"].as_str().unwrap().ends_with("/payment-declined"), "{problem}");
    assert_eq!(problem["decline_code"], "generic_decline", "{problem}");

    // Short of stock: authorized, then voided, so its PaymentIntent is canceled.
    let scarce = shop.product(&seller, 500, 1).await;
    let (_, short) = checkout(&shop, &scarce, 2, "tok_visa").await;
    assert_eq!(short.status(), StatusCode::CONFLICT);
    let config = system_tests::emulator().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let payments = system_tests::statuses(&dynamo, &shop.api.reference("PaymentTable"), "PAYMENT#").await;
    let voided: Vec<&str> =
        payments.iter().filter(|(_, s)| s == "voided").map(|(pk, _)| pk.trim_start_matches("PAYMENT#")).collect();
    assert_eq!(voided.len(), 1, "the short checkout's payment: {payments:?}");
    assert_eq!(the_intent_of(voided[0]).await["status"], "canceled");

    // Every payment of this stack, each exactly one PaymentIntent: none made twice.
    assert_eq!(payments.len(), 5, "{payments:?}");
    for (pk, _) in &payments {
        the_intent_of(pk.trim_start_matches("PAYMENT#")).await;
    }
}

/// `POST /internal/payments/authorize` as the checkout function calls it (SigV4, its own key).
async fn authorize(api: &LocalApi, body: &Value) -> (StatusCode, Value) {
    let url = format!("{}/internal/payments/authorize", api.url);
    let body = body.to_string();
    let credentials = aws_credential_types::Credentials::new(
        devstack::iam::access_key("CheckoutFunction"),
        "test",
        None,
        None,
        "stripe-test",
    );
    let headers = [("content-type", "application/json")];
    let signed = shared::sigv4::signing_headers(
        "POST",
        &url,
        &headers,
        body.as_bytes(),
        &credentials,
        "us-east-1",
        SystemTime::now(),
    )
    .unwrap();
    let mut request = reqwest::Client::new().post(&url).body(body);
    for (name, value) in headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).chain(signed) {
        request = request.header(name, value);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// Defect this guards against: localstripe ignores Idempotency-Key, so an authorization
/// resumed after its answer was lost (the provider authorized, the outcome was not recorded)
/// would make a second PaymentIntent, holding the customer's money twice.
#[tokio::test]
async fn a_resumed_authorization_makes_no_second_payment_intent() {
    let api = LocalApi::start().await;
    let order_id = format!("ord_{}", ulid::Ulid::generate());
    let key = format!("resume-{}", ulid::Ulid::generate());
    let ask = json!({"idempotency_key": key, "order_id": order_id, "user_id": "usr_resume", "amount_cents": 2500, "payment_token": "tok_visa"});
    let (status, first) = authorize(&api, &ask).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let payment_id = first["payment_id"].as_str().unwrap().to_owned();
    let intent = the_intent_of(&payment_id).await;
    assert_eq!(intent["status"], "requires_capture");

    // The answer lost before the outcome was recorded: the key pending again, no payment.
    let config = system_tests::emulator().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let table = api.reference("PaymentTable");
    let item_key = |pk: String, sk: &str| [("pk", AttributeValue::S(pk)), ("sk", AttributeValue::S(sk.into()))];
    let mut pending = dynamo.delete_item().table_name(&table);
    for (name, value) in item_key(format!("PAYMENT#{payment_id}"), "PAYMENT") {
        pending = pending.key(name, value);
    }
    pending.send().await.unwrap();
    let mut reset = dynamo
        .update_item()
        .table_name(&table)
        .update_expression("SET outcome = :pending, since = :since")
        .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
        .expression_attribute_values(":since", AttributeValue::N("0".into()));
    for (name, value) in item_key(format!("PAYKEY#{key}"), "PAYKEY") {
        reset = reset.key(name, value);
    }
    reset.send().await.unwrap();

    let (status, resumed) = authorize(&api, &ask).await;
    assert_eq!(status, StatusCode::CREATED, "{resumed}");
    assert_eq!(resumed["payment_id"], payment_id.as_str(), "the same payment");
    let again = the_intent_of(&payment_id).await;
    assert_eq!(again["id"], intent["id"], "the PaymentIntent it made, not a second one");
    assert_eq!(intents_with("order_id", &order_id).await.len(), 1);

    // The same key once recorded is answered from the record: still one.
    let (status, replayed) = authorize(&api, &ask).await;
    assert_eq!((status, &replayed["payment_id"]), (StatusCode::CREATED, &resumed["payment_id"]));
    assert_eq!(intents_with("order_id", &order_id).await.len(), 1);
}
