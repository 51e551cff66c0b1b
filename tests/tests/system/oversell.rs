//! Oversell, a hot product: 100 customers check out at once against its last 10 units,
//! through the local stack. Exactly 10 orders, the stock ends at 0 and is never negative on
//! the way, the other 90 get a 409 with the shortage (never a 5xx: contention in the
//! reservation transaction is retried, not reported as a shortage or an outage), and nothing
//! is left half-done: no held reservation, no payment authorized without an order.
//!
//! The race's requests wait up to RACE_TIMEOUT, not the 30 s of API Gateway's integration
//! timeout the other tests hold the stack to: on AWS each of the 100 invocations runs in a
//! sandbox of its own, locally they share 2 cores and one emulator process (~14 AWS calls per
//! checkout at ~7 ms of LocalStack's CPU each), so the last answer comes when the whole race's
//! work is done: 20-30 s on a busy 2-core machine. How long that takes is `make bench`'s
//! business; this test is about what the answers are.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::shop::Shop;
use system_tests::{count, statuses};

const UNITS: u32 = 10;
const CUSTOMERS: usize = 100;
const RACE_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_customers_racing_for_the_last_ten_units_make_exactly_ten_orders() {
    let shop = Shop::open(&[]).await;
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 2500, UNITS).await;
    let customers = join_all((0..CUSTOMERS).map(|_| shop.register("customer"))).await;
    join_all(customers.iter().map(|c| shop.put_in_cart(c, &product, 1))).await;

    // Watch the stock while the checkouts race: it must never read below 0 (or above 10).
    let done = AtomicBool::new(false);
    let race = async {
        let http = reqwest::Client::builder().timeout(RACE_TIMEOUT).build().unwrap();
        let checkout = |customer: &system_tests::shop::User| {
            http.post(shop.url("/cart/checkout"))
                .bearer_auth(&customer.token)
                .json(&json!({"payment_token": "tok_visa"}))
                .send()
        };
        let answers = join_all(customers.iter().map(|c| async { checkout(c).await.expect("an answer") })).await;
        done.store(true, Ordering::SeqCst);
        answers
    };
    let watch = async {
        let mut seen = Vec::new();
        while !done.load(Ordering::SeqCst) {
            let product: Value =
                shop.http.get(shop.url(&format!("/products/{product}"))).send().await.unwrap().json().await.unwrap();
            seen.push(product["stock"].as_i64().expect("a stock figure"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seen
    };
    let (answers, seen) = tokio::join!(race, watch);
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|s| (0..=i64::from(UNITS)).contains(s)), "stock seen during the race: {seen:?}");

    let mut winners = Vec::new();
    for (customer, answer) in customers.iter().zip(answers) {
        let status = answer.status();
        let content_type = answer.headers()["content-type"].to_str().unwrap().to_owned();
        let body: Value = answer.json().await.unwrap();
        match status {
            StatusCode::CREATED => winners.push((customer, body["order_id"].as_str().unwrap().to_owned())),
            StatusCode::CONFLICT => {
                assert_eq!(content_type, "application/problem+json");
                assert_eq!(body["shortages"][0]["product_id"], product.as_str(), "{body}");
            }
            other => panic!("a checkout answered {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), UNITS as usize, "exactly as many orders as units");
    assert_eq!(shop.stock(&product).await, 0);

    // Every order finishes (paid, its reservation committed); every loser has no order.
    for (customer, order_id) in &winners {
        let order = shop.wait_for_order(customer, order_id, Duration::from_secs(60), |o| o["status"] == "paid").await;
        assert_eq!(order["status"], "paid", "{order}");
    }
    for customer in customers.iter().filter(|c| !winners.iter().any(|(w, _)| w.id == c.id)) {
        let orders: Value = shop.get(customer, "/orders").await.json().await.unwrap();
        assert_eq!(orders["items"].as_array().unwrap().len(), 0, "a 409'd customer has no order");
    }

    let dynamo = aws_sdk_dynamodb::Client::new(&system_tests::emulator().await);
    let reservations = statuses(&dynamo, &shop.api.reference("SellerTable"), "RESERVATION#").await;
    assert_eq!(reservations.len(), UNITS as usize, "a refused reservation writes nothing: {reservations:?}");
    assert_eq!(count(&reservations, "committed"), UNITS as usize, "no reservation left held: {reservations:?}");
    // Payment is authorized before stock is reserved, so every loser's authorization must be voided.
    let payments = statuses(&dynamo, &shop.api.reference("PaymentTable"), "PAYMENT#").await;
    assert_eq!(payments.len(), CUSTOMERS, "{payments:?}");
    assert_eq!(count(&payments, "settled"), UNITS as usize, "{payments:?}");
    assert_eq!(count(&payments, "voided"), CUSTOMERS - UNITS as usize, "{payments:?}");
    assert_eq!(shop.stock(&product).await, 0, "committing reservations does not move stock again");
}
