//! IAM as AWS enforces it, on the local stack: each function signs with its own identity,
//! and a call its role in template.yaml does not allow is refused as AWS refuses it (the
//! SDK sees AccessDenied); and every grant of every role is used by the shop's flows, or is
//! listed here with the reason no local run can use it.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use devstack::proxy::AwsProxy;
use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::LocalApi;
use system_tests::shop::{Shop, User};

const DEADLINE: Duration = Duration::from_secs(30);

/// An SDK configuration that calls AWS as `function` does: through devstack's checking proxy,
/// with the function's own access key.
fn as_function(api: &LocalApi, function: &str) -> aws_config::SdkConfig {
    let proxy = api
        .log_lines()
        .iter()
        .find_map(|line| line.split(devstack::serve::IAM_PROXY_LINE).nth(1).map(str::to_owned))
        .expect("devstack says where the functions reach AWS");
    let credentials =
        aws_credential_types::Credentials::new(devstack::iam::access_key(function), "test", None, None, "iam-test");
    aws_config::SdkConfig::builder()
        .endpoint_url(proxy)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

/// The error code the SDK read from a refused call, if it was refused.
fn code<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(result: Result<R, E>) -> Option<String> {
    result.err().and_then(|e| e.code().map(str::to_owned))
}

/// A request to an internal route, SigV4-signed with `function`'s key, as the functions sign them.
async fn invoke(api: &LocalApi, function: &str, method: &str, path: &str) -> StatusCode {
    let url = format!("{}{path}", api.url);
    let credentials =
        aws_credential_types::Credentials::new(devstack::iam::access_key(function), "test", None, None, "t");
    let headers =
        shared::sigv4::signing_headers(method, &url, &[], b"{}", &credentials, "us-east-1", SystemTime::now()).unwrap();
    let mut request = reqwest::Client::new().request(method.parse().unwrap(), &url).body("{}");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn a_call_its_role_does_not_allow_is_refused_as_aws_refuses_it() {
    let api = LocalApi::start().await;
    let table = api.reference("OrderTable");
    let key = |k: &str| AttributeValue::S(k.to_owned());

    // DynamoDB (JSON protocol): GetOrder reads orders and writes none.
    let reader = aws_sdk_dynamodb::Client::new(&as_function(&api, "GetOrderFunction"));
    let read = reader.get_item().table_name(&table).key("pk", key("ORDER#x")).key("sk", key("ORDER")).send().await;
    assert!(read.is_ok(), "{read:?}");
    let write = reader.put_item().table_name(&table).item("pk", key("ORDER#x")).item("sk", key("ORDER")).send().await;
    let error = write.expect_err("GetOrderFunction may not write orders");
    let message = aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string();
    assert_eq!(aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&error), Some("AccessDeniedException"), "{message}");
    assert!(
        message.contains(&format!("assumed-role/{}-GetOrderFunctionRole/GetOrderFunction is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:", api.stack["stack_name"].as_str().unwrap())),
        "{message}"
    );
    // A transaction needs each item's action: CreateOrder may put orders, not update them.
    let creator = aws_sdk_dynamodb::Client::new(&as_function(&api, "CreateOrderFunction"));
    let update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(&table)
        .key("pk", key("ORDER#x"))
        .key("sk", key("ORDER"))
        .update_expression("SET v = :v")
        .expression_attribute_values(":v", key("1"))
        .build()
        .unwrap();
    let transaction = creator
        .transact_write_items()
        .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().update(update).build())
        .send()
        .await;
    assert_eq!(code(transaction).as_deref(), Some("AccessDeniedException"));

    // SNS (query protocol): Notify sends SMS, and publishes to no topic.
    let notify = aws_sdk_sns::Client::new(&as_function(&api, "NotifyFunction"));
    let topic = api.reference("OrderEventsTopic");
    let to_topic = notify.publish().topic_arn(&topic).message("{}").send().await;
    let error = to_topic.expect_err("NotifyFunction may not publish to a topic");
    assert!(error.as_service_error().is_some_and(|e| e.is_authorization_error_exception()), "{error:?}");
    let sms = notify.publish().phone_number("+15555550100").message("hi").send().await;
    assert!(sms.is_ok(), "{sms:?}");
    let orders = aws_sdk_sns::Client::new(&as_function(&api, "CreateOrderFunction"));
    let published = orders.publish().topic_arn(&topic).message("{}").send().await;
    assert!(published.is_ok(), "{published:?}");

    // Secrets Manager: only the functions that issue tokens read the private keys; the ones
    // that verify tokens do not (they hold the public keys only), nor does any other.
    let secret = api.reference("JwtSigningKeys");
    for function in ["MeFunction", "AuthorizerFunction", "JwksFunction", "LogoutFunction"] {
        let client = aws_sdk_secretsmanager::Client::new(&as_function(&api, function));
        let read = client.get_secret_value().secret_id(&secret).send().await;
        assert_eq!(code(read).as_deref(), Some("AccessDeniedException"), "{function}");
    }
    for function in ["LoginFunction", "RegisterFunction", "RefreshFunction"] {
        let client = aws_sdk_secretsmanager::Client::new(&as_function(&api, function));
        assert!(client.get_secret_value().secret_id(&secret).send().await.is_ok(), "{function}");
    }

    // A key that is no function's is no identity at all.
    let nobody = aws_sdk_dynamodb::Client::new(&as_function(&api, "NoSuchFunction"));
    let refused = nobody.get_item().table_name(&table).key("pk", key("x")).key("sk", key("x")).send().await;
    assert_eq!(code(refused).as_deref(), Some("UnrecognizedClientException"));

    // execute-api:Invoke: Notify reads users; Me does not call internal routes at all.
    assert_eq!(invoke(&api, "MeFunction", "GET", "/internal/users/nobody").await, StatusCode::FORBIDDEN);
    assert_eq!(invoke(&api, "NotifyFunction", "GET", "/internal/users/nobody").await, StatusCode::NOT_FOUND);
    assert_eq!(invoke(&api, "NotifyFunction", "POST", "/internal/orders").await, StatusCode::FORBIDDEN);
    assert!(api.log_lines().iter().any(|l| l.contains("AccessDenied: User: arn:aws:sts::")), "denials are logged");
}

/// Every function with a table reads one key of it in init to open the connection, over TLS
/// only (shared::config::warm_up_table); the local stack is plain HTTP.
const WARM_UP: &str = "the init's warm-up GetItem (shared::config::warm_up), made only over TLS: on AWS, not here";

/// Grants that the run below does not use (or not every time: a retry under load may), and
/// why: (function, action, resource, reason). Resources are written with `{stack}`,
/// `{region}` and `{account}` for what differs between runs.
const UNUSED_ON_PURPOSE: &[(&str, &str, &str, &str)] = &[
    (
        "AbandonOrderFunction",
        "dynamodb:GetItem",
        "arn:aws:dynamodb:{region}:{account}:table/{stack}-order",
        "reads the order only when the abandon finds it made: a checkout whose answer was lost after Order \
         made the order; no local flow loses that answer",
    ),
    ("AnalyticsFunction", "dynamodb:GetItem", "arn:aws:dynamodb:{region}:{account}:table/{stack}-ai-buddy", WARM_UP),
    (
        "AuthorizePaymentFunction",
        "dynamodb:DeleteItem",
        "arn:aws:dynamodb:{region}:{account}:table/{stack}-payment",
        "drops a pending idempotency key when an authorization fails between its two writes (drop_key): a \
         DynamoDB failure mid-request, which the emulator does not make",
    ),
    (
        "CheckoutFunction",
        "execute-api:Invoke",
        "arn:aws:execute-api:{region}:{account}:HttpApi/*/POST/internal/orders/*/abandon",
        "a checkout repeated after its attempt's payment ended (an answer lost mid-checkout, then the payment \
         failed or was voided) asks Order to give the order id up; no local flow loses an answer mid-checkout",
    ),
    (
        "CreateOrderFunction",
        "dynamodb:GetItem",
        "arn:aws:dynamodb:{region}:{account}:table/{stack}-order",
        "a create retried with the same order id (its first answer lost) reads the order it made",
    ),
    (
        "LearnFunction",
        "dynamodb:DeleteItem",
        "arn:aws:dynamodb:{region}:{account}:table/{stack}-ai-buddy",
        "releases an idempotency claim after its work failed, for the redelivery: Learn's work does not fail \
         in a healthy run",
    ),
    (
        "PaymentOutboxRelayFunction",
        "sns:Publish",
        "arn:aws:sns:{region}:{account}:{stack}-payment-events",
        "publishes only what a settlement failed to publish, and settlements run in a queue consumer: no \
         flow here cuts SNS at that moment for sure. The Auth and Order relays, the same shared::outbox \
         code, do publish here; the Payment relay parks an item",
    ),
    (
        "ReleaseReservationFunction",
        "dynamodb:BatchGetItem",
        "arn:aws:dynamodb:{region}:{account}:table/{stack}-seller",
        "reads where the products keep their stock now only when giving units back where they were taken \
         failed (the seller re-sharded the product meanwhile): a race no flow here makes for sure",
    ),
    (
        "RemoveDeviceFunction",
        "dynamodb:GetItem",
        "arn:aws:dynamodb:{region}:{account}:table/{stack}-notification",
        WARM_UP,
    ),
    (
        "ReserveStockFunction",
        "dynamodb:GetItem",
        "arn:aws:dynamodb:{region}:{account}:table/{stack}-seller",
        "a reserve repeated with the same reservation id (a checkout resumed after a lost answer) reads the \
         reservation it made",
    ),
    // Stripe's webhook records a move (a transaction: the payment's update and the outbox put,
    // then the event's publish and the outbox delete) only when its event comes before
    // settlement records the same move. localstripe sends its events a second after the call
    // that made them, long after settlement recorded it; payment's handlers/webhooks.rs tests
    // the webhook winning.
    (
        "StripeWebhookFunction",
        "dynamodb:DeleteItem",
        "arn:aws:dynamodb:{region}:{account}:table/{stack}-payment",
        "deletes an event from the outbox once published, after a move the webhook recorded first: none \
         locally (localstripe reports a move a second after settlement recorded it)",
    ),
    (
        "StripeWebhookFunction",
        "dynamodb:PutItem",
        "arn:aws:dynamodb:{region}:{account}:table/{stack}-payment",
        "writes a move's event to the outbox when the webhook records the move first: none locally",
    ),
    (
        "StripeWebhookFunction",
        "dynamodb:UpdateItem",
        "arn:aws:dynamodb:{region}:{account}:table/{stack}-payment",
        "moves a payment when Stripe's event comes before settlement records the move: none locally",
    ),
    (
        "StripeWebhookFunction",
        "sns:Publish",
        "arn:aws:sns:{region}:{account}:{stack}-payment-events",
        "publishes the event of a move the webhook recorded first: none locally",
    ),
];

#[tokio::test]
async fn every_grant_is_used_by_the_shops_flows_or_listed_with_its_reason() {
    // Behind a fault proxy, to make publishing fail (the outbox relays' work); checkouts
    // abandoned at once, for the reconciler.
    let emulator = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let proxy = AwsProxy::start(&emulator).await.expect("the proxy starts");
    let parameters = [("CheckoutAbandonSeconds", "0"), ("CircuitOpenSeconds", "1")];
    let mut shop = Shop::around(LocalApi::start_through(Some(&proxy.url), &parameters).await);
    run_every_flow(&shop).await;
    run_failures(&shop, &proxy).await;
    shop.api.stop();

    let stack = shop.api.stack["stack_name"].as_str().unwrap().to_owned();
    let account = shop.api.stack["account_id"].as_str().unwrap().to_owned();
    let region = shop.api.stack["region"].as_str().unwrap().to_owned();
    let general =
        |text: &str| text.replace(&stack, "{stack}").replace(&account, "{account}").replace(&region, "{region}");
    let lines = shop.api.log_lines();
    assert!(lines.iter().any(|l| l.contains("grants unused")), "devstack reports the grants it saw used");
    let unused: BTreeSet<String> =
        lines.iter().filter_map(|line| line.split(devstack::serve::UNUSED_GRANT_LINE).nth(1)).map(general).collect();
    let listed: BTreeSet<String> =
        UNUSED_ON_PURPOSE.iter().map(|(f, action, resource, _)| format!("{f} {action} {resource}")).collect();
    let surprising: Vec<&String> = unused.difference(&listed).collect();
    assert!(
        surprising.is_empty(),
        "grants no flow used (remove them, exercise them, or list them with a reason):\n{}",
        surprising.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
    );
    // A listed grant may be used now and then (a retry under load); it must still be a grant.
    let grants: BTreeSet<String> = roles(&shop.api)
        .grants()
        .iter()
        .map(|g| general(&format!("{} {} {}", g.function, g.action, g.resource)))
        .collect();
    let stale: Vec<&String> = listed.difference(&grants).collect();
    assert!(stale.is_empty(), "listed, but no role has it (take it off the list): {stale:?}");
}

/// The roles of the stack `api` runs, as devstack reads them from the template.
fn roles(api: &LocalApi) -> devstack::iam::Iam {
    let text = |name: &str| api.stack[name].as_str().expect(name).to_owned();
    let json = |name: &str| api.stack[name].clone();
    let stack = devstack::provision::Stack {
        stack_name: text("stack_name"),
        parameters: serde_json::from_value(json("parameters")).expect("parameters"),
        region: text("region"),
        account_id: text("account_id"),
        resources: serde_json::from_value(json("resources")).expect("resources"),
        types: serde_json::from_value(json("types")).expect("types"),
        actions: Default::default(),
    };
    devstack::iam::Iam::from_template(&system_tests::template(), &stack, "test").expect("the roles")
}

/// What the shop does, once each: sign-up, login, catalogue, cart, checkout, settlement,
/// shipping and delivery, cancel, notifications, AI Buddy, and the scheduled relays and
/// reconciler.
async fn run_every_flow(shop: &Shop) {
    let http = &shop.http;
    let seller = shop.register("seller").await;
    let email = format!("customer.{}@example.com", ulid::Ulid::generate().to_string().to_lowercase());
    let customer = shop.sign_up(&email, "correct horse", "customer").await;
    let login = http
        .post(shop.url("/auth/login"))
        .json(&json!({"email": email, "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(shop.get(&customer, "/auth/me").await.status(), StatusCode::OK);
    // A session: refreshed, a spent token presented again (its family revoked), logout, keys.
    let session: Value = login.json().await.unwrap();
    let refresh = |token: Value| http.post(shop.url("/auth/refresh")).json(&json!({"refresh_token": token})).send();
    let next: Value = refresh(session["refresh_token"].clone()).await.unwrap().json().await.unwrap();
    assert!(next["refresh_token"].is_string(), "{next}");
    assert_eq!(refresh(session["refresh_token"].clone()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let logout = http
        .post(shop.url("/auth/logout"))
        .bearer_auth(&customer.token)
        .json(&json!({"refresh_token": next["refresh_token"]}));
    assert_eq!(logout.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(shop.get(&customer, "/.well-known/jwks.json").await.status(), StatusCode::OK);
    // Notifications by email, SMS and push, chosen by the customer.
    let preferences = json!({"email": true, "sms": true, "push": true, "phone_number": "+14155550100"});
    let put = http.put(shop.url("/notifications/preferences")).bearer_auth(&customer.token).json(&preferences);
    assert_eq!(put.send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(shop.get(&customer, "/notifications/preferences").await.status(), StatusCode::OK);
    // Devices: one removed by its owner; one whose token another account registers (it moves);
    // one that SNS disables, which registering enables again, and which the next push, after
    // SNS disabled it once more, removes.
    let sns = aws_sdk_sns::Client::new(&system_tests::emulator().await);
    let token = |name: &str| format!("{name}-{}", ulid::Ulid::generate());
    let (removed, _) = shop.register_device(&customer, "GCM", &token("removed")).await;
    let remove = http.delete(shop.url(&format!("/notifications/devices/{removed}"))).bearer_auth(&customer.token);
    assert_eq!(remove.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let moved = token("moved");
    shop.register_device(&customer, "GCM", &moved).await;
    shop.register_device(&seller, "GCM", &moved).await;
    let disabled = token("disabled");
    let (_, endpoint) = shop.register_device(&customer, "APNS", &disabled).await;
    let disable = || sns.set_endpoint_attributes().endpoint_arn(&endpoint).attributes("Enabled", "false").send();
    disable().await.unwrap();
    shop.register_device(&customer, "APNS", &disabled).await;
    disable().await.unwrap();
    // A bounce, as SES publishes it, suppresses an address.
    let bounce = json!({"eventType": "Bounce", "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "gone@example.com"}]}});
    sns.publish().topic_arn(shop.api.reference("EmailFeedbackTopic")).message(bounce.to_string()).send().await.unwrap();

    let product = shop.product(&seller, 1299, 10).await;
    let patched = http
        .patch(shop.url(&format!("/products/{product}")))
        .bearer_auth(&seller.token)
        .json(&json!({"price_cents": 1199}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK, "{}", patched.text().await.unwrap_or_default());
    assert_eq!(shop.get(&customer, "/products?category=books").await.status(), StatusCode::OK);
    assert_eq!(shop.get(&customer, "/products").await.status(), StatusCode::OK);

    // A product's stock spread over shards for a sale, then over fewer (their reads, a delete).
    let sale = shop.product(&seller, 700, 10).await;
    shop.shard_stock(&seller, &sale, 4).await;
    shop.shard_stock(&seller, &sale, 2).await;

    let other = shop.product(&seller, 500, 9).await;
    shop.put_in_cart(&customer, &other, 1).await;
    shop.put_in_cart(&customer, &product, 1).await;
    let removed =
        http.delete(shop.url(&format!("/cart/items/{other}"))).bearer_auth(&customer.token).send().await.unwrap();
    assert!(removed.status().is_success(), "{}", removed.status());
    shop.put_in_cart(&customer, &product, 2).await;
    assert_eq!(shop.cart(&customer).await["items"].as_array().map(Vec::len), Some(1));
    let placed = shop.checkout(&customer, "tok_visa", None).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order_id = placed.json::<Value>().await.unwrap()["order_id"].as_str().unwrap().to_owned();
    let order = shop.wait_for_order(&customer, &order_id, DEADLINE, |o| o["status"] == "paid").await;
    assert_eq!(order["status"], "paid", "{order}");
    let payment = shop.get(&customer, &format!("/payments/{}", order["payment_id"].as_str().unwrap())).await;
    assert_eq!(payment.status(), StatusCode::OK);
    assert_eq!(shop.get(&customer, "/orders").await.status(), StatusCode::OK);

    // The seller ships the paid order and records its delivery.
    let shipment_id = system_tests::eventually(DEADLINE, || async {
        let listed: Value = shop.get(&seller, "/seller/shipments").await.json().await.ok()?;
        let items = listed["items"].as_array()?.clone();
        items.iter().find(|s| s["order_id"] == order_id.as_str())?["shipment_id"].as_str().map(str::to_owned)
    })
    .await
    .expect("the paid order's shipment in the seller's list");
    let shipment_url = |step: &str| shop.url(&format!("/seller/shipments/{shipment_id}/{step}"));
    let how = json!({"carrier": "UPS", "tracking_number": "1Z999AA10123456784"});
    let shipped = http.post(shipment_url("ship")).bearer_auth(&seller.token).json(&how).send().await.unwrap();
    assert_eq!(shipped.status(), StatusCode::OK);
    let delivered = http.post(shipment_url("deliver")).bearer_auth(&seller.token).send().await.unwrap();
    assert_eq!(delivered.status(), StatusCode::OK);

    // A second order, cancelled: refund and restock.
    shop.put_in_cart(&customer, &product, 1).await;
    let placed = shop.checkout(&customer, "tok_visa", None).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let second = placed.json::<Value>().await.unwrap()["order_id"].as_str().unwrap().to_owned();
    assert!(shop.cancel(&customer, &second).await.status().is_success());

    shop.wait_for_notifications(&customer, &["welcome", "order_confirmation", "payment_receipt"], DEADLINE).await;
    assert_eq!(shop.get(&customer, "/recommendations").await.status(), StatusCode::OK);
    assert_eq!(shop.get(&seller, "/analytics/summary").await.status(), StatusCode::OK);
    assert_eq!(shop.stock(&other).await, 9);
    let analytics = shop.get(&seller, "/analytics/summary").await.json::<Value>().await.unwrap();
    assert!(analytics["orders"].is_number(), "{analytics}");
    for message in ["what is the status of my order?", "can you recommend something?", "hello"] {
        assert_eq!(ask(shop, &customer, message).await, StatusCode::OK, "{message}");
    }

    // Sellers: the profile, the admin's list, a suspension (an approval made `seller`).
    assert_eq!(shop.get(&seller, "/sellers/me").await.status(), StatusCode::OK);
    let admin = shop.admin().await;
    assert_eq!(shop.get(&admin, "/admin/sellers?status=approved").await.status(), StatusCode::OK);
    let dropped = shop.product(&seller, 100, 1).await;
    let deleted =
        http.delete(shop.url(&format!("/products/{dropped}"))).bearer_auth(&seller.token).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let rogue = shop.register("seller").await;
    assert_eq!(shop.suspend(&rogue.id, "the iam run").await["status"], "suspended");
}

async fn ask(shop: &Shop, who: &User, message: &str) -> StatusCode {
    let request = shop.http.post(shop.url("/assistant/messages")).bearer_auth(&who.token);
    request.json(&json!({"message": message})).send().await.unwrap().status()
}

/// What goes wrong, once each: a declined card, a repeated checkout, a wrong password, a
/// checkout left behind (the reconciler), events that could not be published (the relays),
/// and an outbox item that is no event (parked).
async fn run_failures(shop: &Shop, proxy: &AwsProxy) {
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 700, 20).await;
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &product, 1).await;
    assert_eq!(shop.checkout(&customer, "tok_chargeDeclined", None).await.status(), StatusCode::PAYMENT_REQUIRED);
    shop.put_in_cart(&customer, &product, 50).await;
    assert_eq!(shop.checkout(&customer, "tok_visa", None).await.status(), StatusCode::CONFLICT, "a shortage");
    shop.put_in_cart(&customer, &product, 1).await;
    let first = shop.checkout(&customer, "tok_visa", Some("again")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(shop.checkout(&customer, "tok_visa", Some("again")).await.status(), StatusCode::CREATED);
    let wrong = shop
        .http
        .post(shop.url("/auth/login"))
        .json(&json!({"email": "nobody@example.com", "password": "wrong horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    shop.put_in_cart(&customer, &product, 1).await;
    shop.api.set_down("CreateOrderFunction", true).await;
    assert_eq!(shop.checkout(&customer, "tok_visa", Some("left")).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    shop.api.set_down("CreateOrderFunction", false).await;
    shop.api.run_schedule("ReconcileCheckoutsFunction").await;
    let again = shop.checkout(&customer, "tok_visa", Some("left")).await;
    assert_eq!(again.status(), StatusCode::CREATED, "undone, so the key starts afresh");
    // Interrupted before its reservation: the reconciler's release leaves a tombstone.
    shop.put_in_cart(&customer, &product, 1).await;
    shop.api.set_down("ReserveStockFunction", true).await;
    assert_eq!(shop.checkout(&customer, "tok_visa", Some("early")).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    shop.api.set_down("ReserveStockFunction", false).await;
    shop.api.run_schedule("ReconcileCheckoutsFunction").await;

    // Published later: a sign-up and its first order while SNS is unreachable; the order
    // goes out first, so Notify has to look the user up.
    proxy.cut("sns.Publish");
    let newcomer = shop.register("customer").await;
    assert_eq!(ask(shop, &newcomer, "hello").await, StatusCode::OK, "a user Learn has not heard of yet");
    shop.put_in_cart(&newcomer, &product, 1).await;
    let placed = shop.checkout(&newcomer, "tok_visa", None).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order_id = placed.json::<Value>().await.unwrap()["order_id"].as_str().unwrap().to_owned();
    // The seller suspended and approved again: both events wait in the Seller outbox.
    assert_eq!(shop.suspend(&seller.id, "a lost publish").await["status"], "suspended");
    assert_eq!(shop.approve(&seller.id).await["status"], "approved");
    proxy.restore();
    let admin = aws_sdk_dynamodb::Client::new(&system_tests::emulator().await);
    for table in ["AuthTable", "OrderTable", "PaymentTable", "SellerTable"] {
        let poison = [("pk", "OUTBOX"), ("sk", "01POISON"), ("envelope", "not an event")];
        let item = poison.iter().map(|(k, v)| (k.to_string(), AttributeValue::S(v.to_string()))).collect();
        admin.put_item().table_name(shop.api.reference(table)).set_item(Some(item)).send().await.unwrap();
    }
    shop.api.run_schedule("OrderOutboxRelayFunction").await;
    shop.wait_for_notifications(&newcomer, &["order_confirmation"], DEADLINE).await;
    shop.api.run_schedule("AuthOutboxRelayFunction").await;
    shop.api.run_schedule("PaymentOutboxRelayFunction").await;
    shop.api.run_schedule("SellerOutboxRelayFunction").await;
    let told = shop.wait_for_notifications(&seller, &["seller_suspended", "seller_approved"], DEADLINE).await;
    assert!(told.iter().any(|t| t == "seller_suspended") && told.iter().any(|t| t == "seller_approved"), "{told:?}");
    let paid = shop.wait_for_order(&newcomer, &order_id, DEADLINE, |o| o["status"] == "paid").await;
    assert_eq!(paid["status"], "paid", "{paid}");
}
