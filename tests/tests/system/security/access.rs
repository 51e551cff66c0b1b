//! One user, another's things: nobody reaches what is not theirs, and nobody sets what the
//! server decides (mass assignment).

use super::*;

// ---------------------------------------------------------------- one user, another's things

#[tokio::test]
async fn nobody_reaches_another_users_orders_payments_carts_notifications_or_products() {
    let api = LocalApi::start().await;
    let client = Client::new(&api);
    let (seller, rival) = (client.register("seller").await, client.register("seller").await);
    let dune = client.product(&seller, 1299, 20).await;
    let (ann, bob) = (client.register("customer").await, client.register("customer").await);
    client.put_in_cart(&ann, &dune, 1).await;
    let first = client.checkout(&ann, "ann-1", json!({"payment_token": "tok_visa"})).await;
    client.put_in_cart(&ann, &dune, 2).await;
    let order = client.checkout(&ann, "ann-2", json!({"payment_token": "tok_visa"})).await;
    let (order_id, payment_id) = (order["order_id"].as_str().unwrap(), order["payment_id"].as_str().unwrap());
    client.put_in_cart(&ann, &dune, 3).await;
    client.put_in_cart(&bob, &dune, 1).await;

    // Another user's order or payment is a 404, the same answer as one that does not exist.
    let not_found = |answer: &Answer, id: &str| {
        let mut problem = answer.expect_problem(StatusCode::NOT_FOUND);
        problem.as_object_mut().unwrap().remove("correlation_id");
        problem["detail"] = json!(problem["detail"].as_str().unwrap().replace(id, "<id>"));
        problem
    };
    for (path, id, unknown) in [
        (format!("/orders/{order_id}"), order_id, "/orders/ord_01ZZZZZZZZZZZZZZZZZZZZZZZZ"),
        (format!("/payments/{payment_id}"), payment_id, "/payments/pay_01ZZZZZZZZZZZZZZZZZZZZZZZZ"),
    ] {
        let theirs = client.get(&bob, &path).await;
        let nobodys = client.get(&bob, unknown).await;
        let unknown_id = unknown.rsplit('/').next().unwrap();
        assert_eq!(not_found(&theirs, id), not_found(&nobodys, unknown_id), "{path}: no existence leak");
    }
    let cancelled = client.call(Some(&bob), Method::POST, &format!("/orders/{order_id}/cancel"), Some(json!({}))).await;
    cancelled.expect_problem(StatusCode::NOT_FOUND);
    assert_ne!(client.get(&ann, &format!("/orders/{order_id}")).await.json()["status"], "cancelled");

    // Lists are the caller's, whatever the query says.
    let ann_id = &ann.id;
    for path in [
        "/orders".to_owned(),
        format!("/orders?user_id={ann_id}"),
        format!("/notifications?user_id={ann_id}"),
        "/cart".to_owned(),
        format!("/cart?user_id={ann_id}"),
    ] {
        let answer = client.get(&bob, &path).await.expect(StatusCode::OK);
        assert!(!answer.to_string().contains(order_id), "{path} shows ann's order to bob");
        assert!(!answer.to_string().contains(ann_id.as_str()), "{path} shows ann's id to bob");
    }
    // Bob empties "his" line of the product: ann's cart keeps hers.
    client.call(Some(&bob), Method::DELETE, &format!("/cart/items/{dune}"), None).await.expect(StatusCode::OK);
    assert_eq!(client.get(&ann, "/cart").await.json()["items"][0]["quantity"], 3);

    // The same Idempotency-Key is bob's own checkout, not a replay of ann's order.
    client.put_in_cart(&bob, &dune, 1).await;
    let bobs = client.checkout(&bob, "ann-2", json!({"payment_token": "tok_visa"})).await;
    assert_ne!(bobs["order_id"], order["order_id"]);
    assert_eq!(bobs["user_id"], bob.id.as_str());

    // Ann's notifications reach her, never bob.
    let ann_has_hers = system_tests::eventually(Duration::from_secs(20), || async {
        let listed = client.get(&ann, "/notifications").await.json();
        listed.to_string().contains(order_id).then_some(())
    })
    .await;
    assert!(ann_has_hers.is_some(), "ann's order confirmation never came");
    let bobs_notifications = client.get(&bob, "/notifications?limit=100").await.expect(StatusCode::OK);
    assert!(!bobs_notifications.to_string().contains(order_id), "bob sees ann's notification");

    // The assistant tells bob about bob's orders only.
    let reply = client
        .call(
            Some(&bob),
            Method::POST,
            "/assistant/messages",
            Some(json!({"message": "where is my order?", "user_id": ann_id})),
        )
        .await
        .expect(StatusCode::OK);
    assert!(!reply.to_string().contains(order_id), "{reply}");

    // A rival seller can neither change the product nor see its sales.
    let patched =
        client.call(Some(&rival), Method::PATCH, &format!("/products/{dune}"), Some(json!({"price_cents": 1}))).await;
    patched.expect_problem(StatusCode::NOT_FOUND);
    assert_eq!(client.call(None, Method::GET, &format!("/products/{dune}"), None).await.json()["price_cents"], 1299);
    let sold = system_tests::eventually(Duration::from_secs(20), || async {
        (client.get(&seller, "/analytics/summary").await.json()["units_sold"].as_u64() >= Some(3)).then_some(())
    })
    .await;
    assert!(sold.is_some(), "the seller's analytics never counted the sales");
    let theirs =
        client.get(&rival, &format!("/analytics/summary?seller_id={}", seller.id)).await.expect(StatusCode::OK);
    assert_eq!((theirs["orders"].as_u64(), theirs["units_sold"].as_u64()), (Some(0), Some(0)), "{theirs}");

    // A cursor is good for the list that gave it out: ann pages through her orders with
    // hers; on bob's list it is refused, not read (no other user's partition, no 5xx).
    let page = client.get(&ann, "/orders?limit=1").await.expect(StatusCode::OK);
    let cursor = page["next_cursor"].as_str().expect("two orders: a second page").to_owned();
    let next = client.get(&ann, &format!("/orders?limit=1&cursor={cursor}")).await.expect(StatusCode::OK);
    assert_eq!(next["items"][0]["order_id"], first["order_id"], "the second page is the older order");
    client.get(&bob, &format!("/orders?limit=1&cursor={cursor}")).await.expect_problem(StatusCode::BAD_REQUEST);
    let notifications = client.get(&ann, "/notifications?limit=1").await.expect(StatusCode::OK);
    let cursor = notifications["next_cursor"].as_str().expect("several notifications").to_owned();
    client.get(&ann, &format!("/notifications?limit=1&cursor={cursor}")).await.expect(StatusCode::OK);
    client.get(&bob, &format!("/notifications?limit=1&cursor={cursor}")).await.expect_problem(StatusCode::BAD_REQUEST);
    client.get(&ann, &format!("/products?limit=1&cursor={cursor}")).await.expect_problem(StatusCode::BAD_REQUEST);
    client.assert_clean(&api).await;
}

// ---------------------------------------------------------------- mass assignment

#[tokio::test]
async fn clients_cannot_set_what_the_server_decides() {
    let api = LocalApi::start().await;
    let client = Client::new(&api);
    let seller = client.register("seller").await;

    // Registration: an unknown role is refused (docs/api.md: unknown enum values are 400); ids,
    // dates and flags are ignored.
    for role in ["admin", "ADMIN", "Seller ", "root"] {
        let email = format!("{}@example.com", ulid::Ulid::generate().to_string().to_lowercase());
        let body = json!({"email": email, "password": PASSWORD, "name": "M", "role": role});
        client.call(None, Method::POST, "/auth/register", Some(body)).await.expect_problem(StatusCode::BAD_REQUEST);
    }
    let email = format!("mallory.{}@example.com", ulid::Ulid::generate().to_string().to_lowercase());
    let body = json!({"email": email, "password": PASSWORD, "name": "Mallory", "user_id": "usr_chosen",
        "created_at": "2000-01-01T00:00:00Z", "is_admin": true, "admin": true, "email_verified": true});
    let session = client.call(None, Method::POST, "/auth/register", Some(body)).await.expect(StatusCode::CREATED);
    let mallory = User {
        id: session["user"]["user_id"].as_str().unwrap().to_owned(),
        token: session["access_token"].as_str().unwrap().to_owned(),
    };
    assert_ne!(mallory.id, "usr_chosen");
    assert_eq!(session["user"]["role"], "customer");
    assert!(session["user"]["created_at"].as_str().unwrap() > "2020", "{session}");
    assert!(session["user"].get("is_admin").is_none() && session["user"].get("admin").is_none());
    let chosen = client
        .send(
            "GET /internal/users/usr_chosen",
            client.signed(Method::GET, "/internal/users/usr_chosen", vec![], &Signer::local()),
        )
        .await;
    chosen.expect_problem(StatusCode::NOT_FOUND);
    // Login: a role in the body changes nothing.
    let login = json!({"email": email, "password": PASSWORD, "role": "seller"});
    let again = client.call(None, Method::POST, "/auth/login", Some(login)).await.expect(StatusCode::OK);
    let relogged = User { id: mallory.id.clone(), token: again["access_token"].as_str().unwrap().to_owned() };
    assert_eq!(client.get(&relogged, "/auth/me").await.expect(StatusCode::OK)["role"], "customer");

    // A product is the caller's, in USD, with ids and dates of the server's making.
    let body = json!({"name": "Dune", "category": "books", "price_cents": 1299, "stock": 5,
        "seller_id": mallory.id, "product_id": "prd_chosen", "currency": "EUR",
        "created_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z"});
    let product = client.call(Some(&seller), Method::POST, "/products", Some(body)).await.expect(StatusCode::CREATED);
    let product_id = product["product_id"].as_str().unwrap().to_owned();
    assert_eq!((product["seller_id"].as_str(), product["currency"].as_str()), (Some(seller.id.as_str()), Some("USD")));
    assert_ne!(product_id, "prd_chosen");
    assert!(product["created_at"].as_str().unwrap() > "2020");
    client.call(None, Method::GET, "/products/prd_chosen", None).await.expect_problem(StatusCode::NOT_FOUND);
    // PATCH takes only the documented fields: anything else refuses the whole change.
    for body in [
        json!({"seller_id": mallory.id}),
        json!({"product_id": "prd_other"}),
        json!({"currency": "EUR"}),
        json!({"created_at": "2000-01-01T00:00:00Z"}),
        json!({"price_cents": 1, "seller_id": mallory.id}),
    ] {
        let path = format!("/products/{product_id}");
        client.call(Some(&seller), Method::PATCH, &path, Some(body)).await.expect_problem(StatusCode::BAD_REQUEST);
    }
    let unchanged =
        client.call(None, Method::GET, &format!("/products/{product_id}"), None).await.expect(StatusCode::OK);
    assert_eq!(unchanged, product, "a refused PATCH changed the product");
    // A customer cannot make themselves a seller's product either.
    let body = json!({"name": "x", "category": "x", "price_cents": 1, "stock": 1, "role": "seller"});
    client.call(Some(&mallory), Method::POST, "/products", Some(body)).await.expect_problem(StatusCode::FORBIDDEN);

    // Cart prices come from the catalogue.
    let path = format!("/cart/items/{product_id}");
    let body = json!({"quantity": 2, "price_cents": 1, "unit_price_cents": 1, "line_total_cents": 0, "name": "Free", "user_id": seller.id});
    let cart = client.call(Some(&mallory), Method::PUT, &path, Some(body)).await.expect(StatusCode::OK);
    assert_eq!(cart["user_id"], mallory.id.as_str());
    assert_eq!(
        cart["items"],
        json!([{"product_id": product_id, "name": "Dune", "unit_price_cents": 1299, "quantity": 2, "line_total_cents": 2598}])
    );
    assert_eq!(cart["total_cents"], 2598);
    assert!(client.get(&seller, "/cart").await.json()["items"].as_array().unwrap().is_empty(), "the seller's cart");

    // Checkout: the order and its payment are the caller's, at catalogue prices, `placed`.
    let body = json!({"payment_token": "tok_visa", "total_cents": 1, "amount_cents": 1, "currency": "EUR",
        "user_id": seller.id, "status": "paid", "order_id": "ord_chosen", "payment_id": "pay_chosen",
        "items": [{"product_id": product_id, "quantity": 1, "unit_price_cents": 1}]});
    let order = client.checkout(&mallory, "mass", body).await;
    assert_eq!((order["user_id"].as_str(), order["total_cents"].as_u64()), (Some(mallory.id.as_str()), Some(2598)));
    assert_eq!((order["status"].as_str(), order["currency"].as_str()), (Some("placed"), Some("USD")));
    assert_eq!(order["items"][0]["unit_price_cents"], 1299);
    assert_eq!(order["items"][0]["quantity"], 2);
    assert!(order["order_id"] != "ord_chosen" && order["payment_id"] != "pay_chosen");
    let payment_id = order["payment_id"].as_str().unwrap();
    let payment = client.get(&mallory, &format!("/payments/{payment_id}")).await.expect(StatusCode::OK);
    assert_eq!(
        (payment["amount_cents"].as_u64(), payment["user_id"].as_str()),
        (Some(2598), Some(mallory.id.as_str()))
    );

    // Cancelling takes no body: a status in it changes nothing of what cancel does.
    let order_id = order["order_id"].as_str().unwrap();
    let body = json!({"status": "paid", "total_cents": 0, "user_id": seller.id});
    let cancelled = client.call(Some(&mallory), Method::POST, &format!("/orders/{order_id}/cancel"), Some(body)).await;
    let cancelled = cancelled.expect(StatusCode::OK);
    assert_eq!((cancelled["status"].as_str(), cancelled["total_cents"].as_u64()), (Some("cancelled"), Some(2598)));
    assert_eq!(cancelled["user_id"], mallory.id.as_str());
    client.assert_clean(&api).await;
}
