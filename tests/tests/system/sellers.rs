//! Sellers on the local stack (docs/api.md, Sellers): a seller's profile is made `pending`
//! from `user.registered`; only an approved seller lists products; the admin's routes refuse
//! everyone else. A suspended seller's products and a deleted product leave the catalogue, carts
//! and checkouts; approval gives a seller's products back, deleted ones stay deleted. Each
//! approval and suspension reaches the seller as one notification.

use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::shop::{Shop, ShopClient, User};

/// `POST /products` as `seller`.
async fn list_product(shop: &ShopClient, seller: &User) -> reqwest::Response {
    let body = json!({"name": "Dune", "category": "books", "price_cents": 1299, "stock": 3});
    shop.http.post(shop.url("/products")).bearer_auth(&seller.token).json(&body).send().await.unwrap()
}

/// A seller who registered and was not approved (yet): their profile, once it exists.
async fn pending_seller(shop: &ShopClient) -> (User, Value) {
    let email = format!("pending.{}@example.com", ulid::Ulid::generate().to_string().to_lowercase());
    let seller = shop.sign_up(&email, "correct horse", "seller").await;
    let profile = system_tests::eventually(std::time::Duration::from_secs(30), || async {
        let answer = shop.get(&seller, "/sellers/me").await;
        match answer.status() {
            StatusCode::OK => Some(answer.json::<Value>().await.unwrap()),
            status => {
                assert_eq!(status, StatusCode::NOT_FOUND, "until the profile is made");
                None
            }
        }
    })
    .await
    .expect("the profile is made from user.registered");
    (seller, profile)
}

#[tokio::test]
async fn a_pending_seller_is_refused_and_an_approved_one_lists() {
    let shop = Shop::open(&[]).await;
    let (seller, profile) = pending_seller(&shop).await;
    assert_eq!((&profile["seller_id"], &profile["status"]), (&json!(seller.id), &json!("pending")));
    assert!(profile["email"].as_str().unwrap().starts_with("pending."), "{profile}");

    let refused = list_product(&shop, &seller).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: Value = refused.json().await.unwrap();
    assert!(problem["type"].as_str().unwrap().ends_with("/seller-not-approved"), "{problem}");

    let admin = shop.admin().await;
    let pending: Value = shop.get(&admin, "/admin/sellers?status=pending&limit=100").await.json().await.unwrap();
    assert!(pending["items"].as_array().unwrap().iter().any(|s| s["seller_id"] == seller.id.as_str()), "{pending}");

    for _ in 0..2 {
        let approved = shop.approve(&seller.id).await;
        assert_eq!(approved["status"], "approved", "approving twice is a no-op 200");
    }
    let me: Value = shop.get(&seller, "/sellers/me").await.json().await.unwrap();
    assert_eq!(me["status"], "approved");
    let listed = list_product(&shop, &seller).await;
    assert_eq!(listed.status(), StatusCode::CREATED);
    let approved: Value = shop.get(&admin, "/admin/sellers?status=approved").await.json().await.unwrap();
    assert!(approved["items"].as_array().unwrap().iter().any(|s| s["seller_id"] == seller.id.as_str()));
    let still_pending: Value = shop.get(&admin, "/admin/sellers?status=pending&limit=100").await.json().await.unwrap();
    assert!(!still_pending["items"].as_array().unwrap().iter().any(|s| s["seller_id"] == seller.id.as_str()));
}

#[tokio::test]
async fn admin_routes_refuse_customers_and_sellers_and_admins_cannot_be_registered() {
    let shop = Shop::open(&[]).await;
    let (seller, _) = pending_seller(&shop).await;
    let customer = shop.register("customer").await;
    for who in [&customer, &seller] {
        let listed = shop.get(who, "/admin/sellers").await;
        assert_eq!(listed.status(), StatusCode::FORBIDDEN);
        assert_eq!(listed.headers()["content-type"], "application/problem+json");
        let approve = shop.url(&format!("/admin/sellers/{}/approve", seller.id));
        let approved = shop.http.post(approve).bearer_auth(&who.token).send().await.unwrap();
        assert_eq!(approved.status(), StatusCode::FORBIDDEN);
        let suspend = shop.url(&format!("/admin/sellers/{}/suspend", seller.id));
        let body = json!({"reason": "no"});
        let suspended = shop.http.post(suspend).bearer_auth(&who.token).json(&body).send().await.unwrap();
        assert_eq!(suspended.status(), StatusCode::FORBIDDEN);
    }
    let me: Value = shop.get(&seller, "/sellers/me").await.json().await.unwrap();
    assert_eq!(me["status"], "pending", "nothing changed");
    assert_eq!(shop.get(&customer, "/sellers/me").await.status(), StatusCode::FORBIDDEN, "customers have no profile");

    let admin = shop.admin().await;
    let unknown = shop.url("/admin/sellers/usr_nobody/approve");
    assert_eq!(shop.http.post(unknown).bearer_auth(&admin.token).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let suspend = shop.url(&format!("/admin/sellers/{}/suspend", seller.id));
    for bad in [json!({}), json!({"reason": ""}), json!({"reason": "x".repeat(501)})] {
        let answer = shop.http.post(&suspend).bearer_auth(&admin.token).json(&bad).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let bad_status = shop.get(&admin, "/admin/sellers?status=gone").await;
    assert_eq!(bad_status.status(), StatusCode::BAD_REQUEST);

    let register = json!({"email": "boss@example.com", "password": "correct horse", "name": "Boss", "role": "admin"});
    let answer = shop.http.post(shop.url("/auth/register")).json(&register).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "admin is never self-registered");
    let me: Value = shop.get(&admin, "/auth/me").await.json().await.unwrap();
    assert_eq!((&me["role"], &me["email"]), (&json!("admin"), &json!(::auth::admin::AdminAccount::from_env().email)));
}

/// Whether the product is in the catalogue: (GET status, listed, addable to a cart).
async fn on_sale(shop: &ShopClient, customer: &User, product_id: &str) -> (StatusCode, bool, StatusCode) {
    let got = shop.http.get(shop.url(&format!("/products/{product_id}"))).send().await.unwrap().status();
    let listed: Value = shop.http.get(shop.url("/products?limit=100")).send().await.unwrap().json().await.unwrap();
    let listed = listed["items"].as_array().unwrap().iter().any(|p| p["product_id"] == product_id);
    let url = shop.url(&format!("/cart/items/{product_id}"));
    let put = shop.http.put(url).bearer_auth(&customer.token).json(&json!({"quantity": 1})).send().await.unwrap();
    (got, listed, put.status())
}

/// A checkout of `customer`'s cart that must fail for `product_id` with `available: 0`.
async fn refused_at_checkout(shop: &ShopClient, customer: &User, product_id: &str) {
    let answer = shop.checkout(customer, "tok_visa", None).await;
    assert_eq!(answer.status(), StatusCode::CONFLICT);
    let problem: Value = answer.json().await.unwrap();
    let shortage = problem["shortages"].as_array().unwrap().iter().find(|s| s["product_id"] == product_id).cloned();
    assert_eq!(shortage.map(|s| s["available"].clone()), Some(json!(0)), "{problem}");
}

#[tokio::test]
async fn a_suspended_sellers_products_leave_catalogue_carts_and_checkout_until_approved_again() {
    let shop = Shop::open(&[]).await;
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 1299, 5).await;
    let (customer, other) = (shop.register("customer").await, shop.register("customer").await);
    assert_eq!(on_sale(&shop, &customer, &product).await, (StatusCode::OK, true, StatusCode::OK));
    // A paid order placed before the suspension stays as it was.
    shop.put_in_cart(&other, &product, 1).await;
    let placed = shop.checkout(&other, "tok_visa", None).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();

    assert_eq!(shop.suspend(&seller.id, "counterfeits").await["status"], "suspended");
    assert_eq!(on_sale(&shop, &customer, &product).await, (StatusCode::NOT_FOUND, false, StatusCode::NOT_FOUND));
    refused_at_checkout(&shop, &customer, &product).await;
    let kept = shop.order(&other, order["order_id"].as_str().unwrap()).await;
    assert_eq!(kept["items"][0]["product_id"], product.as_str(), "placed orders are unaffected");
    assert_ne!(kept["status"], "cancelled");
    let refused = list_product_status(&shop, &seller).await;
    assert_eq!(refused, StatusCode::FORBIDDEN, "a suspended seller lists nothing");

    shop.approve(&seller.id).await;
    assert_eq!(on_sale(&shop, &customer, &product).await, (StatusCode::OK, true, StatusCode::OK));
    let bought = shop.checkout(&customer, "tok_visa", None).await;
    assert_eq!(bought.status(), StatusCode::CREATED, "approval gives the products back");

    // The seller heard of each change once (seller-events -> Notification): approved when they
    // registered, suspended with the reason, approved again.
    let wanted = [("welcome", 1), ("seller_approved", 2), ("seller_suspended", 1)];
    let count = |listed: &[Value], template: &str| listed.iter().filter(|n| n["template"] == template).count();
    let listed = system_tests::eventually(std::time::Duration::from_secs(30), || async {
        let page: Value = shop.get(&seller, "/notifications?limit=100").await.json().await.ok()?;
        let listed = page["items"].as_array()?.clone();
        wanted.iter().all(|(t, n)| count(&listed, t) >= *n).then_some(listed)
    })
    .await
    .expect("the seller's notifications");
    for (template, n) in wanted {
        assert_eq!(count(&listed, template), n, "{template}: {listed:?}");
    }
    assert_eq!(listed.len(), 4, "{listed:?}");
    let suspended = listed.iter().find(|n| n["template"] == "seller_suspended").unwrap();
    assert!(suspended["body"].as_str().unwrap().contains("counterfeits"), "{suspended}");
}

#[tokio::test]
async fn a_deleted_product_is_gone_for_good_and_only_its_owner_deletes_it() {
    let shop = Shop::open(&[]).await;
    let (seller, stranger) = (shop.register("seller").await, shop.register("seller").await);
    let (product, kept) = (shop.product(&seller, 1299, 5).await, shop.product(&seller, 500, 5).await);
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &product, 1).await;
    let delete =
        |who: &User| shop.http.delete(shop.url(&format!("/products/{product}"))).bearer_auth(&who.token).send();
    assert_eq!(delete(&stranger).await.unwrap().status(), StatusCode::NOT_FOUND, "another seller's product");
    assert_eq!(delete(&customer).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(shop.stock(&product).await, 5);
    let deleted = delete(&seller).await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(delete(&seller).await.unwrap().status(), StatusCode::NOT_FOUND, "deleted already");
    refused_at_checkout(&shop, &customer, &product).await;
    let other = shop.register("customer").await;
    assert_eq!(on_sale(&shop, &other, &product).await, (StatusCode::NOT_FOUND, false, StatusCode::NOT_FOUND));
    // A suspension and an approval give back the seller's other products, not this one.
    shop.suspend(&seller.id, "checking").await;
    shop.approve(&seller.id).await;
    assert_eq!(on_sale(&shop, &other, &product).await.0, StatusCode::NOT_FOUND, "deleted stays deleted");
    assert_eq!(on_sale(&shop, &other, &kept).await, (StatusCode::OK, true, StatusCode::OK));
}

async fn list_product_status(shop: &ShopClient, seller: &User) -> StatusCode {
    list_product(shop, seller).await.status()
}
