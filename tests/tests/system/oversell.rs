//! Oversell, a hot product: 100 customers check out at once against its last 10 units,
//! through the local stack, its stock in one item and spread over shards (docs/capacity.md).
//! Exactly 10 orders, the stock ends at 0 and is never negative on the way, the other 90 get
//! a 409 with the shortage (never a 5xx: contention in the reservation transaction is
//! retried, not reported as a shortage or an outage), and nothing is left half-done: no held
//! reservation, no payment authorized without an order. And a sharded product's units go
//! where they should through a sale over several shards, a cancellation and re-sharding.
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
    race(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_customers_racing_for_ten_units_over_four_shards_make_exactly_ten_orders() {
    race(4).await;
}

/// The race for a product whose stock is spread over `shards` items.
async fn race(shards: u32) {
    let shop = Shop::open(&[]).await;
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 2500, UNITS).await;
    if shards > 1 {
        assert_eq!(shop.shard_stock(&seller, &product, shards).await["stock"], UNITS);
    }
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
    if shards > 1 {
        assert_eq!(shard_counts(&shop, &product).await, vec![0; shards as usize]);
    }
}

/// The stock in each of a product's shards, as the table holds them.
async fn shard_counts(shop: &Shop, product: &str) -> Vec<u64> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let dynamo = aws_sdk_dynamodb::Client::new(&system_tests::emulator().await);
    let items =
        system_tests::items_under(&dynamo, &shop.api.reference("SellerTable"), &format!("STOCK#{product}#")).await;
    let number = |item: &std::collections::HashMap<String, AttributeValue>, name: &str| -> u64 {
        item[name].as_n().unwrap().parse().unwrap()
    };
    let mut counts: Vec<(u64, u64)> = items.iter().map(|i| (number(i, "shard"), number(i, "stock"))).collect();
    counts.sort_unstable();
    counts.into_iter().map(|(_, stock)| stock).collect()
}

/// One order takes 9 of 10 units spread 3, 3, 2, 2 (so from three or four shards); its
/// cancellation gives them back to the shards they came from; re-sharding and setting the
/// stock keep the sum, and going back to one shard leaves no shard behind.
#[tokio::test]
async fn a_sharded_products_units_are_taken_over_shards_given_back_and_re_sharded_without_loss() {
    let shop = Shop::open(&[]).await;
    let seller = shop.register("seller").await;
    let customer = shop.register("customer").await;
    let product = shop.product(&seller, 900, UNITS).await;
    let sharded = shop.shard_stock(&seller, &product, 4).await;
    assert_eq!((sharded["stock"].as_u64(), sharded["stock_shards"].as_u64()), (Some(10), Some(4)));
    assert_eq!(shard_counts(&shop, &product).await, vec![3, 3, 2, 2]);

    shop.put_in_cart(&customer, &product, 9).await;
    let placed = shop.checkout(&customer, "tok_visa", None).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    assert_eq!(shop.stock(&product).await, 1);
    assert_eq!(shard_counts(&shop, &product).await.iter().sum::<u64>(), 1);
    let order_id = order["order_id"].as_str().unwrap();
    shop.wait_for_order(&customer, order_id, Duration::from_secs(60), |o| o["status"] == "paid").await;
    assert_eq!(shop.cancel(&customer, order_id).await.status(), StatusCode::OK);
    let restocked = system_tests::eventually(Duration::from_secs(60), || async {
        (shop.stock(&product).await == u64::from(UNITS)).then_some(())
    })
    .await;
    assert!(restocked.is_some(), "the cancelled order's units came back: {}", shop.stock(&product).await);
    assert_eq!(shard_counts(&shop, &product).await, vec![3, 3, 2, 2], "each unit to the shard it came from");

    assert_eq!(shop.shard_stock(&seller, &product, 3).await["stock"], UNITS);
    assert_eq!(shard_counts(&shop, &product).await, vec![4, 3, 3]);
    let url = shop.url(&format!("/products/{product}"));
    let set = shop.http.patch(&url).bearer_auth(&seller.token).json(&json!({"stock": 7})).send().await.unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    assert_eq!(shard_counts(&shop, &product).await, vec![3, 2, 2]);
    let one = shop.shard_stock(&seller, &product, 1).await;
    assert_eq!((one["stock"].as_u64(), one.get("stock_shards")), (Some(7), None), "one shard: as any product");
    assert_eq!(shop.stock(&product).await, 7);
    assert!(shard_counts(&shop, &product).await.is_empty(), "no shard left behind");
    let refused = shop.http.patch(&url).bearer_auth(&seller.token).json(&json!({"stock_shards": 33})).send().await;
    assert_eq!(refused.unwrap().status(), StatusCode::BAD_REQUEST);
}
