//! The synchronous half of the shop through the local stack: sellers' products, carts and
//! the checkout chain (payment, stock, order) with its failures and its idempotency.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::shop::Shop;

#[tokio::test]
async fn a_customer_buys_what_a_seller_listed() {
    let shop = Shop::open(&[]).await;
    let seller = shop.register("seller").await;
    let (dune, arrakis) = (shop.product(&seller, 1299, 5).await, shop.product(&seller, 4500, 2).await);
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &dune, 2).await;
    shop.put_in_cart(&customer, &arrakis, 1).await;
    assert_eq!(shop.cart(&customer).await["user_id"], customer.id.as_str());
    assert_eq!(shop.cart(&customer).await["total_cents"], 2 * 1299 + 4500, "priced from the catalogue");

    let placed = shop.checkout(&customer, "tok_visa", Some("first")).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let location = placed.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = placed.json().await.unwrap();
    assert_eq!(location, format!("/orders/{}", order["order_id"].as_str().unwrap()));
    assert_eq!(order["status"], "placed");
    assert_eq!(order["total_cents"], 7098);
    assert_eq!((shop.stock(&dune).await, shop.stock(&arrakis).await), (3, 1), "stock is lower");
    assert_eq!(shop.cart(&customer).await["items"], json!([]), "the cart is empty");

    let mine: Value = shop.get(&customer, "/orders").await.json().await.unwrap();
    assert_eq!(mine["items"][0]["order_id"], order["order_id"]);
    assert_eq!(shop.get(&customer, &location).await.status(), StatusCode::OK);
    let payment = shop.payment_of(&customer, &order).await;
    // Settlement runs in the background and may already have happened.
    assert!(matches!(payment["status"].as_str(), Some("authorized" | "settled")), "{payment}");
    assert_eq!(payment["amount_cents"], 7098);

    let stranger = shop.register("customer").await;
    assert_eq!(shop.get(&stranger, &location).await.status(), StatusCode::NOT_FOUND, "another user's order");
    let forbidden = shop
        .http
        .post(shop.url("/products"))
        .bearer_auth(&customer.token)
        .json(&json!({"name": "x", "category": "x", "price_cents": 1, "stock": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN, "a seller-only route with a customer token");
}

#[tokio::test]
async fn declines_shortages_and_repeats_keep_stock_and_money_straight() {
    let shop = Shop::open(&[]).await;
    let seller = shop.register("seller").await;
    let dune = shop.product(&seller, 1299, 3).await;
    let customer = shop.register("customer").await;

    shop.put_in_cart(&customer, &dune, 2).await;
    let declined = shop.checkout(&customer, "tok_chargeDeclined", None).await;
    assert_eq!(declined.status(), StatusCode::PAYMENT_REQUIRED);
    assert!(declined.json::<Value>().await.unwrap()["type"].as_str().unwrap().ends_with("/payment-declined"));
    assert_eq!(shop.stock(&dune).await, 3, "nothing reserved");

    shop.put_in_cart(&customer, &dune, 4).await;
    let short = shop.checkout(&customer, "tok_visa", None).await;
    assert_eq!(short.status(), StatusCode::CONFLICT);
    let problem: Value = short.json().await.unwrap();
    assert_eq!(problem["shortages"], json!([{"product_id": dune, "requested": 4, "available": 3}]));
    assert_eq!(shop.stock(&dune).await, 3);

    shop.put_in_cart(&customer, &dune, 1).await;
    let first: Value = shop.checkout(&customer, "tok_visa", Some("once")).await.json().await.unwrap();
    let second = shop.checkout(&customer, "tok_visa", Some("once")).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.json::<Value>().await.unwrap(), first, "the same order");
    let orders: Value = shop.get(&customer, "/orders").await.json().await.unwrap();
    assert_eq!(orders["items"].as_array().unwrap().len(), 1, "one order");
    assert_eq!(shop.stock(&dune).await, 2, "one unit taken once");
}

#[tokio::test]
async fn two_customers_racing_for_the_last_unit_make_exactly_one_order() {
    let shop = Shop::open(&[]).await;
    let seller = shop.register("seller").await;
    let last = shop.product(&seller, 999, 1).await;
    let (ann, bob) = (shop.register("customer").await, shop.register("customer").await);
    shop.put_in_cart(&ann, &last, 1).await;
    shop.put_in_cart(&bob, &last, 1).await;
    let (a, b) = tokio::join!(shop.checkout(&ann, "tok_visa", None), shop.checkout(&bob, "tok_visa", None));
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
    assert_eq!(shop.stock(&last).await, 0);
}

#[tokio::test]
async fn an_outage_is_503_with_nothing_reserved_and_the_breaker_opens_and_recovers() {
    let shop = Shop::open(&[("CircuitOpenSeconds", "2")]).await;
    let seller = shop.register("seller").await;
    let dune = shop.product(&seller, 1299, 5).await;
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &dune, 1).await;

    shop.api.set_down("AuthorizePaymentFunction", true).await;
    for _ in 0..5 {
        let failed = shop.checkout(&customer, "tok_visa", None).await;
        assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(failed.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(shop.stock(&dune).await, 5, "nothing reserved");

    // Payment is back, but the breaker is open: the next checkout fails fast, untried.
    shop.api.set_down("AuthorizePaymentFunction", false).await;
    assert_eq!(shop.checkout(&customer, "tok_visa", None).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // Half-open: one probe goes through and closes it.
    assert_eq!(shop.checkout(&customer, "tok_visa", None).await.status(), StatusCode::CREATED);
    assert_eq!(shop.stock(&dune).await, 4);
}

/// Defect (issue 14): a double click on "place order" (two checkouts of the same cart, no
/// Idempotency-Key, at once) made two orders and two charges and took the stock twice.
#[tokio::test]
async fn a_double_click_without_a_key_is_one_order_charged_once() {
    let shop = Shop::open(&[]).await;
    let seller = shop.register("seller").await;
    let dune = shop.product(&seller, 1299, 5).await;
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &dune, 1).await;
    let (a, b) = tokio::join!(shop.checkout(&customer, "tok_visa", None), shop.checkout(&customer, "tok_visa", None));
    assert_eq!((a.status(), b.status()), (StatusCode::CREATED, StatusCode::CREATED));
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["order_id"], b["order_id"], "the same order");
    let again = shop.checkout(&customer, "tok_visa", None).await;
    assert_eq!(again.status(), StatusCode::CREATED, "a third click, after the cart was emptied");
    assert_eq!(again.json::<Value>().await.unwrap()["order_id"], a["order_id"]);
    let orders: Value = shop.get(&customer, "/orders").await.json().await.unwrap();
    assert_eq!(orders["items"].as_array().unwrap().len(), 1, "one order");
    assert_eq!(shop.stock(&dune).await, 4, "one unit taken");
    let payments = system_tests::statuses(
        &aws_sdk_dynamodb::Client::new(&system_tests::emulator().await),
        &shop.api.reference("PaymentTable"),
        "PAYMENT#",
    )
    .await;
    assert_eq!(payments.len(), 1, "one authorization: {payments:?}");
}

/// A checkout interrupted after it authorized and reserved (the Order service down), whose
/// customer never comes back, is undone by the scheduled reconciler; the same key then buys.
#[tokio::test]
async fn a_checkout_left_behind_is_undone_by_the_reconciler() {
    let shop = Shop::open(&[("CheckoutAbandonSeconds", "0")]).await;
    let seller = shop.register("seller").await;
    let dune = shop.product(&seller, 1299, 5).await;
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &dune, 2).await;

    shop.api.set_down("CreateOrderFunction", true).await;
    assert_eq!(shop.checkout(&customer, "tok_visa", Some("left")).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    shop.api.set_down("CreateOrderFunction", false).await;
    assert_eq!(shop.stock(&dune).await, 3, "held while the customer may come back");

    shop.api.run_schedule("ReconcileCheckoutsFunction").await;
    assert_eq!(shop.stock(&dune).await, 5, "the reservation released");
    let dynamo = aws_sdk_dynamodb::Client::new(&system_tests::emulator().await);
    let payments = system_tests::statuses(&dynamo, &shop.api.reference("PaymentTable"), "PAYMENT#").await;
    assert_eq!(system_tests::count(&payments, "voided"), 1, "the authorization voided: {payments:?}");

    let bought = shop.checkout(&customer, "tok_visa", Some("left")).await;
    assert_eq!(bought.status(), StatusCode::CREATED, "the key starts afresh");
    assert_eq!(shop.stock(&dune).await, 3);
    let orders: Value = shop.get(&customer, "/orders").await.json().await.unwrap();
    assert_eq!(orders["items"].as_array().unwrap().len(), 1);
}
