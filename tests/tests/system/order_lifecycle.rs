//! The asynchronous half through the local stack: after checkout the order finishes in the
//! background (settlement, order status, stock), and cancels give money and stock back.
//! Background work is awaited by polling with a deadline, never by fixed sleeps.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use system_tests::shop::Shop;

const DEADLINE: Duration = Duration::from_secs(30);

async fn checked_out(shop: &Shop, token: &str) -> (system_tests::shop::User, String, String) {
    let (customer, product, order_id, _) = checked_out_from(shop, token).await;
    (customer, product, order_id)
}

/// A customer's order of 2 units of a seller's product: customer, product, order id, seller.
async fn checked_out_from(
    shop: &Shop,
    token: &str,
) -> (system_tests::shop::User, String, String, system_tests::shop::User) {
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 1299, 5).await;
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &product, 2).await;
    let placed = shop.checkout(&customer, token, None).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    (customer, product, order["order_id"].as_str().unwrap().to_owned(), seller)
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
    let payment = shop.payment_of(&customer, &order).await;
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
    let restocked =
        system_tests::eventually(DEADLINE, || async { (shop.stock(&product).await == 5).then_some(()) }).await;
    assert!(restocked.is_some(), "the stock never came back");
    let cancel = shop.cancel(&customer, &order_id).await;
    assert_eq!(cancel.status(), StatusCode::CONFLICT, "a failed payment is not cancellable");
    let templates = shop.wait_for_notifications(&customer, &["payment_failed", "order_cancelled"], DEADLINE).await;
    assert!(templates.iter().any(|t| t == "payment_failed"), "{templates:?}");
}

#[tokio::test]
async fn a_cancel_refunds_and_restocks() {
    let shop = Shop::open(&[]).await;
    let (customer, product, order_id) = checked_out(&shop, "tok_visa").await;
    shop.wait_for_order(&customer, &order_id, DEADLINE, |o| o["status"] == "paid").await;
    let cancelled = shop.cancel(&customer, &order_id).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let order: Value = cancelled.json().await.unwrap();
    assert_eq!(order["status"], "cancelled");
    let payment_url = format!("/payments/{}", order["payment_id"].as_str().unwrap());
    let given_back = system_tests::eventually(DEADLINE, || async {
        let payment: Value = shop.get(&customer, &payment_url).await.json().await.ok()?;
        (payment["status"] == "refunded" && shop.stock(&product).await == 5).then_some(())
    })
    .await;
    assert!(given_back.is_some(), "not refunded and restocked");
}

#[tokio::test]
async fn recommendations_and_analytics_reflect_the_purchase() {
    let shop = Shop::open(&[]).await;
    let (customer, product, order_id, seller) = checked_out_from(&shop, "tok_visa").await;
    let other = shop.product(&seller, 500, 9).await;
    shop.wait_for_order(&customer, &order_id, DEADLINE, |o| o["status"] == "paid").await;

    let deadline = tokio::time::Instant::now() + DEADLINE;
    let summary = loop {
        let summary: Value = shop.get(&seller, "/analytics/summary").await.json().await.unwrap();
        if (summary["units_sold"] == 2 && summary["top_products"][0].is_object())
            || tokio::time::Instant::now() >= deadline
        {
            break summary;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (summary["orders"].as_u64(), summary["units_sold"].as_u64(), summary["revenue_cents"].as_u64()),
        (Some(1), Some(2), Some(2598)),
        "{summary}"
    );
    assert_eq!(summary["top_products"][0]["product_id"], product.as_str());

    let found: Value = shop.get(&customer, "/recommendations?limit=50").await.json().await.unwrap();
    let ids: Vec<&str> = found["items"].as_array().unwrap().iter().map(|i| i["product_id"].as_str().unwrap()).collect();
    assert!(!ids.contains(&product.as_str()), "never a product already bought: {found}");
    assert!(ids.contains(&other.as_str()), "{found}");
    let newcomer = shop.register("customer").await;
    let popular: Value = shop.get(&newcomer, "/recommendations").await.json().await.unwrap();
    assert_eq!(popular["items"][0]["reason"], "popular");

    let reply: Value = shop
        .http
        .post(shop.url("/assistant/messages"))
        .bearer_auth(&customer.token)
        .json(&serde_json::json!({"message": "what is the status of my order?"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["intent"], "order_status");
    assert!(reply["reply"].as_str().unwrap().contains(&order_id), "{reply}");
    assert_eq!(shop.get(&customer, "/analytics/summary").await.status(), StatusCode::FORBIDDEN);
}
