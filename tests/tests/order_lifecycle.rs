//! The asynchronous half through the local stack: after checkout the order finishes in the
//! background (settlement, order status, stock), and cancels give money and stock back.
//! Background work is awaited by polling with a deadline, never by fixed sleeps.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use system_tests::shop::Shop;

const DEADLINE: Duration = Duration::from_secs(30);

async fn checked_out(shop: &Shop, token: &str) -> (system_tests::shop::User, String, String) {
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 1299, 5).await;
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &product, 2).await;
    let placed = shop.checkout(&customer, token, None).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    (customer, product, order["order_id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_paid_order_is_settled_and_its_stock_committed() {
    let shop = Shop::open(&[]).await;
    let (customer, product, order_id) = checked_out(&shop, "tok_visa").await;
    let order = shop.wait_for_order(&customer, &order_id, DEADLINE, |o| o["status"] == "paid").await;
    assert_eq!(order["status"], "paid");
    let history: Vec<&str> =
        order["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(history, ["placed", "paid"]);
    let payment: Value = shop
        .get(&customer, &format!("/payments/{}", order["payment_id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payment["status"], "settled");
    assert_eq!(shop.stock(&product).await, 3, "committed, not given back");
    let templates =
        shop.wait_for_notifications(&customer, &["welcome", "order_confirmation", "payment_receipt"], DEADLINE).await;
    let mut sorted = templates.clone();
    sorted.sort();
    assert_eq!(sorted, ["order_confirmation", "payment_receipt", "welcome"], "one each: {templates:?}");
}

#[tokio::test]
async fn a_failed_settlement_ends_payment_failed_and_returns_the_stock() {
    let shop = Shop::open(&[]).await;
    let (customer, product, order_id) = checked_out(&shop, "tok_settlementFails").await;
    let order = shop.wait_for_order(&customer, &order_id, DEADLINE, |o| o["status"] == "payment_failed").await;
    assert_eq!(order["status"], "payment_failed");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while shop.stock(&product).await != 5 {
        assert!(tokio::time::Instant::now() < deadline, "the stock never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cancel = shop
        .http
        .post(shop.url(&format!("/orders/{order_id}/cancel")))
        .bearer_auth(&customer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::CONFLICT, "a failed payment is not cancellable");
    let templates = shop.wait_for_notifications(&customer, &["payment_failed", "order_cancelled"], DEADLINE).await;
    assert!(templates.iter().any(|t| t == "payment_failed"), "{templates:?}");
}

#[tokio::test]
async fn a_cancel_refunds_and_restocks() {
    let shop = Shop::open(&[]).await;
    let (customer, product, order_id) = checked_out(&shop, "tok_visa").await;
    shop.wait_for_order(&customer, &order_id, DEADLINE, |o| o["status"] == "paid").await;
    let cancelled = shop
        .http
        .post(shop.url(&format!("/orders/{order_id}/cancel")))
        .bearer_auth(&customer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    let order: Value = cancelled.json().await.unwrap();
    assert_eq!(order["status"], "cancelled");
    let payment_url = format!("/payments/{}", order["payment_id"].as_str().unwrap());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let payment: Value = shop.get(&customer, &payment_url).await.json().await.unwrap();
        if payment["status"] == "refunded" && shop.stock(&product).await == 5 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not refunded and restocked: {payment}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
