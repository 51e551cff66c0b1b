//! Shipments through the local stack (docs/api.md, Fulfilment): a two-seller order from
//! placed to paid to shipped to delivered, each seller seeing and moving only their own
//! shipment, a second ship refused, cancel refused once anything shipped, a bad address 400,
//! and the customer's notifications (one `order_shipped` and one `order_delivered` per
//! shipment), each once.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::shop::{Shop, User};

const DEADLINE: Duration = Duration::from_secs(30);

fn address() -> Value {
    json!({"name": "Ada Lovelace", "line1": "12 Analytical Row", "line2": "Flat 3", "city": "London",
           "postal_code": "EC1A 1BB", "country": "GB"})
}

async fn checkout_to(shop: &Shop, customer: &User, address: &Value) -> reqwest::Response {
    let body = json!({"payment_token": "tok_visa", "shipping_address": address});
    shop.http.post(shop.url("/cart/checkout")).bearer_auth(&customer.token).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn a_two_seller_order_goes_from_placed_to_delivered_one_shipment_per_seller() {
    let shop = Shop::open(&[]).await;
    let (first, second) = (shop.register("seller").await, shop.register("seller").await);
    let (book, lamp) = (shop.product(&first, 1299, 5).await, shop.product(&second, 4500, 5).await);
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &book, 2).await;
    shop.put_in_cart(&customer, &lamp, 1).await;

    // A bad address is 400 and nothing is bought.
    let mut unknown_country = address();
    unknown_country["country"] = json!("XX");
    let mut blank_line = address();
    blank_line["line1"] = json!("  ");
    let mut long_city = address();
    long_city["city"] = json!("x".repeat(101));
    for bad in [unknown_country, blank_line, long_city] {
        let refused = checkout_to(&shop, &customer, &bad).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(refused.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(shop.cart(&customer).await["items"].as_array().unwrap().len(), 2, "nothing bought");

    let placed = checkout_to(&shop, &customer, &address()).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    let shipped_to: Vec<(&str, &Value)> = order["shipments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["seller_id"].as_str().unwrap(), &s["ship_to"]))
        .collect();
    assert_eq!(shipped_to, [(first.id.as_str(), &address()), (second.id.as_str(), &address())]);
    assert!(order["shipments"].as_array().unwrap().iter().all(|s| s["status"] == "pending"));

    // Paid: each seller sees their own shipment, with the address, and only that one.
    let mine = shop.pending_shipment(&first, &order_id).await;
    let theirs = shop.pending_shipment(&second, &order_id).await;
    assert_eq!(mine["items"], json!([{"product_id": book, "name": "Dune", "quantity": 2}]));
    assert_eq!(mine["ship_to"], address());
    assert_eq!(theirs["items"][0]["product_id"], lamp.as_str());
    let (mine_id, theirs_id) = (mine["shipment_id"].as_str().unwrap(), theirs["shipment_id"].as_str().unwrap());
    assert!(shop.shipments(&first, "pending").await.iter().all(|s| s["seller_id"] == first.id.as_str()));
    assert_eq!(shop.ship(&second, mine_id, "1Z1").await.0, StatusCode::NOT_FOUND, "another seller's");
    assert_eq!(shop.deliver(&second, mine_id).await.0, StatusCode::NOT_FOUND);
    assert_eq!(shop.ship(&customer, mine_id, "1Z1").await.0, StatusCode::NOT_FOUND, "a customer's call");
    assert_eq!(shop.get(&customer, "/seller/shipments").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(shop.deliver(&first, mine_id).await.0, StatusCode::CONFLICT, "not shipped yet");

    let (status, shipped) = shop.ship(&first, mine_id, "1Z999AA10123456784").await;
    assert_eq!(status, StatusCode::OK, "{shipped}");
    assert_eq!((&shipped["status"], &shipped["tracking_number"]), (&json!("shipped"), &json!("1Z999AA10123456784")));
    assert_eq!(shop.ship(&first, mine_id, "1Z2").await.0, StatusCode::CONFLICT, "a second ship");
    let cancel = shop.cancel(&customer, &order_id).await;
    assert_eq!(cancel.status(), StatusCode::CONFLICT, "cancel refused once a shipment shipped");
    assert_eq!(shop.order(&customer, &order_id).await["status"], "paid", "one of two shipped");

    assert_eq!(shop.ship(&second, theirs_id, "JD0002").await.0, StatusCode::OK);
    let order = shop.order(&customer, &order_id).await;
    assert_eq!(order["status"], "shipped");
    assert!(shop.shipments(&first, "shipped").await.iter().any(|s| s["shipment_id"] == mine_id));
    assert!(shop.shipments(&first, "pending").await.iter().all(|s| s["order_id"] != order_id.as_str()));

    assert_eq!(shop.deliver(&first, mine_id).await.0, StatusCode::OK);
    assert_eq!(shop.order(&customer, &order_id).await["status"], "shipped", "one of two delivered");
    let (status, delivered) = shop.deliver(&second, theirs_id).await;
    assert_eq!((status, &delivered["status"]), (StatusCode::OK, &json!("delivered")));
    assert!(delivered["delivered_at"].is_string());
    assert_eq!(shop.deliver(&second, theirs_id).await.0, StatusCode::CONFLICT, "a second deliver");
    let order = shop.order(&customer, &order_id).await;
    let history: Vec<&str> =
        order["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(history, ["placed", "paid", "shipped", "delivered"]);
    assert!(order["shipments"].as_array().unwrap().iter().all(|s| s["status"] == "delivered"));
    assert_eq!(shop.cancel(&customer, &order_id).await.status(), StatusCode::CONFLICT);

    // One notification per event: per shipment, one shipped (with its carrier and tracking
    // number) and one delivered; nothing twice.
    let wanted = ["welcome", "order_confirmation", "payment_receipt", "order_shipped", "order_delivered"];
    let complete = |listed: &[Value]| {
        let count = |t: &str| listed.iter().filter(|n| n["template"] == t).count();
        count("order_shipped") == 2 && count("order_delivered") == 2
    };
    let listed = system_tests::eventually(DEADLINE, || async {
        let page: Value = shop.get(&customer, "/notifications?limit=100").await.json().await.ok()?;
        let listed = page["items"].as_array()?.clone();
        complete(&listed).then_some(listed)
    })
    .await
    .expect("two order_shipped and two order_delivered notifications");
    let mut templates: Vec<&str> = listed.iter().map(|n| n["template"].as_str().unwrap()).collect();
    templates.sort();
    let mut expected = [&wanted[..], &["order_shipped", "order_delivered"]].concat();
    expected.sort();
    assert_eq!(templates, expected, "each once");
    let shipped: Vec<&str> =
        listed.iter().filter(|n| n["template"] == "order_shipped").map(|n| n["body"].as_str().unwrap()).collect();
    assert!(shipped.iter().any(|b| b.contains("UPS") && b.contains("1Z999AA10123456784")), "{shipped:?}");
    assert!(shipped.iter().any(|b| b.contains("JD0002")), "{shipped:?}");
    assert!(
        listed
            .iter()
            .filter(|n| n["template"] == "order_shipped")
            .all(|n| n["subject"].as_str().unwrap().contains(&order_id))
    );
    // Redelivered or not, nothing more arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page: Value = shop.get(&customer, "/notifications?limit=100").await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), expected.len());
}

#[tokio::test]
async fn a_cancelled_order_is_in_no_sellers_list_and_cannot_be_shipped() {
    let shop = Shop::open(&[]).await;
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 1299, 5).await;
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &product, 1).await;
    let placed = shop.checkout(&customer, "tok_visa", None).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    assert_eq!(order["shipments"][0]["ship_to"], Value::Null, "no address given");
    let shipment_id = order["shipments"][0]["shipment_id"].as_str().unwrap().to_owned();
    let shipment = shop.pending_shipment(&seller, &order_id).await;
    assert_eq!(shipment["shipment_id"], shipment_id.as_str());
    assert_eq!(shop.cancel(&customer, &order_id).await.status(), StatusCode::OK);
    assert!(shop.shipments(&seller, "pending").await.iter().all(|s| s["order_id"] != order_id.as_str()));
    assert_eq!(shop.ship(&seller, &shipment_id, "1Z1").await.0, StatusCode::CONFLICT);
}
