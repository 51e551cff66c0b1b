//! Every sample in `events/` replayed against a seeded stack, each to a fresh instance of its
//! function as `make invoke` (`devstack invoke`) replays one, with the answer the sample
//! documents. The stack is seeded through its own API (a seller, two products, a customer whose
//! credentials are the login sample's, two orders), and each sample's ids are replaced by the
//! seeded ones, so the items the functions read were written by the services themselves.
//!
//! One stack for all samples, served in process on a free port: `devstack invoke` provisions
//! the stack again on every call and points the functions' internal calls at 127.0.0.1:3000
//! (`make dev`'s address), which a test cannot count on; the invocation itself is the same
//! (`Runtime::invoke` on an instance started for it).

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use cart::store::CartStore;
use devstack::serve::LocalStack;
use order::store::OrderStore;
use payment::store::PaymentStore;
use serde_json::{Value, json};
use shared::outbox::{DynamoOutbox, Outbox};
use system_tests::shop::{ShopClient, User};
use system_tests::{drain, emulator, eventually, statuses, template, unique_stack_name};

/// Every sample, with the function(s) it is replayed to. A new sample fails the test until it
/// is added here (and replayed below).
const SAMPLES: &[(&str, &str)] = &[
    ("authorizer-request.json", "AuthorizerFunction"),
    ("http-get-health.json", "HealthFunction"),
    ("http-trace-default-route.json", "DefaultRouteFunction"),
    ("http-post-auth-register.json", "RegisterFunction"),
    ("http-post-auth-login.json", "LoginFunction"),
    ("http-get-auth-me.json", "MeFunction"),
    ("http-post-auth-refresh.json", "RefreshFunction"),
    ("http-post-auth-logout.json", "LogoutFunction"),
    ("http-get-jwks.json", "JwksFunction"),
    ("http-get-internal-user.json", "GetUserFunction"),
    ("http-post-products.json", "CreateProductFunction"),
    ("http-get-product.json", "GetProductFunction"),
    ("http-get-products.json", "ListProductsFunction"),
    ("http-patch-product.json", "UpdateProductFunction"),
    ("http-delete-product.json", "DeleteProductFunction"),
    ("http-post-internal-lookup.json", "LookupProductsFunction"),
    ("http-get-seller-me.json", "GetMySellerFunction"),
    ("http-get-admin-sellers.json", "ListSellersFunction"),
    ("http-post-admin-suspend-seller.json", "SuspendSellerFunction"),
    ("http-post-admin-approve-seller.json", "ApproveSellerFunction"),
    ("sqs-user-registered.json", "SettleReservationsFunction"),
    ("http-put-cart-item.json", "SetCartItemFunction"),
    ("http-get-cart.json", "GetCartFunction"),
    ("http-delete-cart-item.json", "RemoveCartItemFunction"),
    ("http-post-checkout.json", "CheckoutFunction"),
    ("http-post-internal-reservation.json", "ReserveStockFunction"),
    ("http-delete-internal-reservation.json", "ReleaseReservationFunction"),
    ("http-post-internal-authorize.json", "AuthorizePaymentFunction"),
    ("http-post-internal-void.json", "VoidPaymentFunction"),
    ("http-post-webhooks-stripe.json", "StripeWebhookFunction"),
    ("http-post-internal-order.json", "CreateOrderFunction"),
    ("http-post-internal-abandon-order.json", "AbandonOrderFunction"),
    ("http-get-order.json", "GetOrderFunction"),
    ("http-get-orders.json", "ListOrdersFunction"),
    ("http-get-payment.json", "GetPaymentFunction"),
    ("http-post-cancel-order.json", "CancelOrderFunction"),
    ("http-get-seller-shipments.json", "ListShipmentsFunction"),
    ("http-post-ship-shipment.json", "ShipShipmentFunction"),
    ("http-post-deliver-shipment.json", "DeliverShipmentFunction"),
    ("sqs-order-shipped.json", "NotifyFunction"),
    ("sqs-order-delivered.json", "NotifyFunction"),
    ("sqs-seller-approved.json", "NotifyFunction"),
    ("sqs-seller-suspended.json", "NotifyFunction"),
    ("sqs-order-shipped.json", "LearnFunction"),
    ("sqs-order-delivered.json", "LearnFunction"),
    ("sqs-user-registered.json", "NotifyFunction"),
    ("http-get-notifications.json", "ListNotificationsFunction"),
    ("http-put-notifications-preferences.json", "PutPreferencesFunction"),
    ("http-get-notifications-preferences.json", "GetPreferencesFunction"),
    ("http-post-notifications-devices.json", "RegisterDeviceFunction"),
    ("http-delete-notifications-device.json", "RemoveDeviceFunction"),
    ("ses-feedback-bounce.json", "SuppressFunction"),
    ("sqs-payment-failed.json", "NotifyFunction"),
    ("sqs-order-created.json", "SettleReservationsFunction"),
    ("sqs-order-created.json", "SettlePaymentsFunction"),
    ("sqs-payment-completed.json", "ApplyPaymentsFunction"),
    ("sqs-inventory-updated.json", "ApplyPaymentsFunction"),
    ("sqs-order-completed.json", "CartEventsFunction"),
    ("sqs-payment-failed.json", "ApplyPaymentsFunction"),
    ("sqs-order-cancelled.json", "SettleReservationsFunction"),
    ("sqs-payment-refunded.json", "NotifyFunction"),
    ("sqs-order-created.json", "LearnFunction"),
    ("sqs-order-completed.json", "LearnFunction"),
    ("http-get-analytics.json", "AnalyticsFunction"),
    ("http-get-recommendations.json", "RecommendationsFunction"),
    ("http-post-assistant.json", "AssistantFunction"),
    ("schedule-auth-outbox-relay.json", "AuthOutboxRelayFunction"),
    ("schedule-order-outbox-relay.json", "OrderOutboxRelayFunction"),
    ("schedule-payment-outbox-relay.json", "PaymentOutboxRelayFunction"),
    ("schedule-seller-outbox-relay.json", "SellerOutboxRelayFunction"),
    ("schedule-reconcile-checkouts.json", "ReconcileCheckoutsFunction"),
];

/// The samples' ids (see docs/events.md and the samples themselves).
const CUSTOMER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";
const SELLER: &str = "usr_01JD4RY9K8J7H6G5F4E3D2C1B0";
const PRODUCT: &str = "prd_01JD4RZX0A1B2C3D4E5F6G7H8J";
const OTHER_PRODUCT: &str = "prd_01JD4RZX9Z8Y7X6W5V4T3S2R1Q";
const ORDER: &str = "ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E";
const PAYMENT: &str = "pay_01JD4S5Q2R3S4T5V6W7X8Y9Z0A";
const RESERVATION: &str = "rsv_01JD4S5V0B1C2D3E4F5G6H7J8K";
/// The samples' shipment (the seeded order's, once it is paid).
const SHIPMENT: &str = "shp_01JD4S6C7D8E9F0G1H2J3K4M5N";
const TOKEN: &str = "Bearer <token>";
/// The refresh and logout samples' refresh token (of no login), replaced by a real one.
const SAMPLE_REFRESH_TOKEN: &str = "rt_3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
/// The webhook sample's PaymentIntent (replaced by the one the seeded payment records) and its
/// signature, a placeholder: a signature goes stale in 5 minutes, so the replay signs it anew.
const INTENT: &str = "pi_3QWebhookSample0001";
const SIGNATURE: &str = "t=1795687200,v1=0000000000000000000000000000000000000000000000000000000000000000";
/// The register sample's address, replaced by a fresh one: the login sample's user has it.
const NEW_EMAIL: &str = "Ada@Example.com";

/// The login sample's credentials, the seeded customer's.
const CUSTOMER_EMAIL: &str = "ada@example.com";
const CUSTOMER_PASSWORD: &str = "correct horse";

/// The samples' prices: their order (two of one product, one of the other) totals 7098.
const PRICE: u64 = 1299;
const OTHER_PRICE: u64 = 4500;
const TOTAL: u64 = 2 * PRICE + OTHER_PRICE;

/// What the stack holds before the first sample.
struct Seed {
    seller: User,
    customer: User,
    products: [String; 2],
    /// The samples' order: placed, its payment authorized, its stock held.
    order: (String, String),
    /// Another one like it, for the samples that end an order (cancel, release).
    second: (String, String),
}

impl Seed {
    async fn create(shop: &ShopClient, sellers: &seller::store::dynamo::DynamoStore) -> Self {
        // No queue is polled here: the seller's profile is made as its consumer makes it from
        // user.registered, then the admin approves it through its route.
        let email = format!("seller.{}@example.com", ulid::Ulid::generate().to_string().to_lowercase());
        let seller = shop.sign_up(&email, CUSTOMER_PASSWORD, "seller").await;
        let registered = shared::events::UserRegistered {
            user_id: seller.id.clone(),
            email,
            name: "seller".into(),
            role: shared::events::Role::Seller,
        };
        let profile = seller::domain::Seller::pending(&registered, chrono::Utc::now()).unwrap();
        assert!(seller::store::SellerStore::create_seller(sellers, &profile).await.unwrap());
        shop.approve(&seller.id).await;
        let customer = shop.sign_up(CUSTOMER_EMAIL, CUSTOMER_PASSWORD, "customer").await;
        let products = [shop.product(&seller, PRICE, 50).await, shop.product(&seller, OTHER_PRICE, 50).await];
        let order = checkout(shop, &customer, &products).await;
        let second = checkout(shop, &customer, &products).await;
        Self { seller, customer, products, order, second }
    }

    /// Sample id -> the seeded one.
    fn ids(&self) -> Vec<(String, String)> {
        [
            (CUSTOMER, self.customer.id.clone()),
            (SELLER, self.seller.id.clone()),
            (PRODUCT, self.products[0].clone()),
            (OTHER_PRODUCT, self.products[1].clone()),
            (ORDER, self.order.0.clone()),
            (PAYMENT, self.order.1.clone()),
            (RESERVATION, reservation_of(&self.order.0)),
            (TOKEN, format!("Bearer {}", self.customer.token)),
        ]
        .into_iter()
        .map(|(sample, ours)| (sample.to_owned(), ours))
        .collect()
    }
}

/// The samples' order, bought: `(order_id, payment_id)`.
async fn checkout(shop: &ShopClient, customer: &User, products: &[String; 2]) -> (String, String) {
    shop.put_in_cart(customer, &products[0], 2).await;
    shop.put_in_cart(customer, &products[1], 1).await;
    let answer = shop.checkout(customer, "tok_visa", Some(&ulid::Ulid::generate().to_string())).await;
    assert_eq!(answer.status(), 201, "seeding checkout");
    let order: Value = answer.json().await.unwrap();
    (text(&order["order_id"]), text(&order["payment_id"]))
}

/// Checkout reserves under the order's id (cart::domain::Checkout::reservation_id).
fn reservation_of(order_id: &str) -> String {
    format!("rsv_{order_id}")
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("{value} is no string")).to_owned()
}

fn fresh(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::generate())
}

/// An HTTP sample's answer.
struct Answer {
    status: u64,
    headers: Value,
    body: Value,
}

/// The seeded stack and what has been replayed on it.
struct Replay {
    local: LocalStack,
    config: aws_config::SdkConfig,
    shop: ShopClient,
    ids: Vec<(String, String)>,
    /// The template's Lambda authorizers.
    authorizers: BTreeSet<String>,
    replayed: BTreeSet<(String, String)>,
}

impl Replay {
    /// The sample with `overrides` (sample id -> ours) applied first, then the seeded ids.
    fn sample(&self, file: &str, overrides: &[(&str, &str)]) -> String {
        let mut text = std::fs::read_to_string(devstack::repo_root().join("events").join(file)).unwrap();
        for (sample, ours) in overrides {
            text = text.replace(sample, ours);
        }
        for (sample, ours) in &self.ids {
            text = text.replace(sample, ours);
        }
        text
    }

    /// Replays `file` to a fresh instance of `function`; its response.
    async fn invoke(&mut self, file: &str, function: &str, overrides: &[(&str, &str)]) -> Value {
        assert!(SAMPLES.contains(&(file, function)), "{file} -> {function} is not in SAMPLES");
        let event = self.sample(file, overrides);
        self.check_source(file, function, &serde_json::from_str(&event).unwrap());
        self.local.runtime.stop_idle(function);
        let invocation = self
            .local
            .runtime
            .invoke(function, event.into())
            .await
            .unwrap_or_else(|error| panic!("{file} -> {function}: {error}"));
        assert!(invocation.init.is_some(), "{file} -> {function} ran in a fresh instance");
        self.replayed.insert((file.to_owned(), function.to_owned()));
        serde_json::from_slice(&invocation.payload).unwrap_or_else(|_| panic!("{file} -> {function}: no JSON"))
    }

    /// The sample is one its function receives: its route, a queue event, a schedule tick.
    fn check_source(&self, file: &str, function: &str, event: &Value) {
        let spec = self.local.functions.iter().find(|f| f.name == function).expect("a function of the template");
        let fits = if event["type"] == "REQUEST" {
            self.authorizers.contains(function)
        } else if let Some(key) = event["routeKey"].as_str() {
            spec.routes.iter().any(|r| r.key() == key)
        } else if event["Records"].is_array() {
            !spec.queues.is_empty()
        } else if event["detail-type"] == "Scheduled Event" {
            !spec.schedules.is_empty()
        } else {
            false
        };
        assert!(fits, "{file} is not an event {function} receives");
    }

    async fn http(&mut self, file: &str, function: &str, overrides: &[(&str, &str)]) -> Answer {
        let response = self.invoke(file, function, overrides).await;
        let body = response["body"].as_str().filter(|b| !b.is_empty()).map(|b| serde_json::from_str(b).unwrap());
        Answer {
            status: response["statusCode"].as_u64().unwrap_or_else(|| panic!("{file}: {response}")),
            headers: response["headers"].clone(),
            body: body.unwrap_or(Value::Null),
        }
    }

    /// Replays an SQS sample; every record must be handled (no `batchItemFailures`).
    async fn sqs(&mut self, file: &str, function: &str, overrides: &[(&str, &str)]) {
        let response = self.invoke(file, function, overrides).await;
        assert_eq!(response["batchItemFailures"], json!([]), "{file} -> {function}");
    }

    fn table(&self, logical_id: &str) -> shared::dynamo::Table {
        shared::dynamo::Table::new(self.dynamo(), self.local.stack.reference(logical_id).unwrap())
    }

    fn dynamo(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }

    async fn order_status(&self, order_id: &str) -> String {
        let store = order::store::dynamo::DynamoStore::new(self.table("OrderTable"));
        let order = store.get(order_id).await.unwrap().unwrap_or_else(|| panic!("no order {order_id}"));
        serde_json::to_value(order.order.status).unwrap().as_str().unwrap().to_owned()
    }

    async fn payment_status(&self, payment_id: &str) -> String {
        let store = payment::store::dynamo::DynamoStore::new(self.table("PaymentTable"));
        let payment = store.get(payment_id).await.unwrap().unwrap_or_else(|| panic!("no payment {payment_id}"));
        serde_json::to_value(payment.payment.status).unwrap().as_str().unwrap().to_owned()
    }

    /// The webhook sample about `payment_id` (its own PaymentIntent), signed now with the
    /// stack's webhook secret as Stripe signs (localstripe's own deliveries are signed so too).
    async fn stripe_webhook(&mut self, payment_id: &str) -> Answer {
        let store = payment::store::dynamo::DynamoStore::new(self.table("PaymentTable"));
        let stored = store.get(payment_id).await.unwrap().unwrap_or_else(|| panic!("no payment {payment_id}"));
        let intent = stored.gateway_ref.0;
        let file = "http-post-webhooks-stripe.json";
        let event: Value = serde_json::from_str(&self.sample(file, &[(INTENT, &intent)])).unwrap();
        let body = event["body"].as_str().unwrap().to_owned();
        let name = &self.local.stack.parameters["StripeSecretName"];
        let secrets = aws_sdk_secretsmanager::Client::new(&self.config);
        let value = secrets.get_secret_value().secret_id(name).send().await.expect("the stack's Stripe secret");
        let keys: Value = serde_json::from_str(value.secret_string().unwrap()).unwrap();
        let secret = keys["webhook_secret"].as_str().expect("a webhook secret");
        let now = chrono::Utc::now().timestamp();
        let signature = payment::handlers::webhooks::signature_header(secret, now, body.as_bytes());
        self.http(file, "StripeWebhookFunction", &[(INTENT, &intent), (SIGNATURE, &signature)]).await
    }

    async fn reservation_status(&self, reservation_id: &str) -> String {
        let table = self.local.stack.reference("SellerTable").unwrap();
        let all = statuses(&self.dynamo(), table, "RESERVATION#").await;
        let pk = format!("RESERVATION#{reservation_id}");
        all.into_iter().find(|(key, _)| *key == pk).unwrap_or_else(|| panic!("no {pk}")).1
    }

    async fn notifications(&self, customer: &User) -> Vec<String> {
        let listed: Value = self.shop.get(customer, "/notifications").await.json().await.unwrap();
        listed["items"].as_array().unwrap().iter().map(|n| text(&n["template"])).collect()
    }

    /// Writes `sample`'s event (under a fresh id) into a service's outbox, as its handler's
    /// transaction does; its id.
    async fn left_in_outbox(&self, sample: &str, table: &str) -> String {
        let event: Value = serde_json::from_str(&self.sample(sample, &[])).unwrap();
        let mut envelope: Value = serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap();
        let id = ulid::Ulid::generate().to_string();
        envelope["id"] = json!(id);
        let envelope: shared::Envelope = serde_json::from_value(envelope).unwrap();
        let outbox = DynamoOutbox::new(self.dynamo(), self.local.stack.reference(table).unwrap());
        let entry: TransactWriteItem = outbox.entry(&envelope).unwrap();
        self.dynamo().transact_write_items().transact_items(entry).send().await.unwrap();
        id
    }

    /// Replays a relay's tick with one event left in its outbox: published to its topic (a
    /// subscribed queue has it), the outbox empty.
    async fn relay(&mut self, file: &str, function: &str, event: &str, table: &str, queue: &str) {
        let id = self.left_in_outbox(event, table).await;
        let report = self.invoke(file, function, &[]).await;
        assert_eq!(report, json!({"published": 1, "failed": 0, "parked": 0}), "{file}");
        let outbox = DynamoOutbox::new(self.dynamo(), self.local.stack.reference(table).unwrap());
        assert!(outbox.pending(10).await.unwrap().is_empty(), "{file}: the outbox is empty");
        let sqs = aws_sdk_sqs::Client::new(&self.config);
        let queue_url = self.local.stack.reference(queue).unwrap();
        // SNS delivers to the queue after the publish returned.
        let delivered = eventually(Duration::from_secs(10), || async {
            let received = drain(&sqs, queue_url).await.unwrap();
            received.iter().any(|m| m.body().unwrap_or_default().contains(&id)).then_some(())
        })
        .await;
        assert!(delivered.is_some(), "{file}: the event reached {queue}");
    }
}

/// The sample files in `events/`.
fn sample_files() -> BTreeSet<String> {
    let dir = devstack::repo_root().join("events");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect()
}

#[test]
fn every_sample_in_events_has_an_expectation_here() {
    let known: BTreeSet<String> = SAMPLES.iter().map(|(file, _)| (*file).to_owned()).collect();
    let files = sample_files();
    let unknown: Vec<_> = files.difference(&known).collect();
    assert!(unknown.is_empty(), "samples nothing replays (add them to SAMPLES and the replay): {unknown:?}");
    let gone: Vec<_> = known.difference(&files).collect();
    assert!(gone.is_empty(), "SAMPLES names files events/ does not have: {gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_in_events_replays_against_a_seeded_stack_with_the_answer_it_documents() {
    let started = std::time::Instant::now();
    let config = emulator().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = devstack::serve::api_url(listener.local_addr().unwrap());
    let mut options = devstack::serve::default_options(&unique_stack_name(), Default::default());
    let exe = std::env::current_exe().unwrap();
    options.bin_dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_owned();
    let local = LocalStack::prepare(&options, &config, &api_url).await.expect("the stack");
    let service = local.gateway.clone().service();
    tokio::spawn(async move { axum::serve(listener, service).await });
    let shop = ShopClient::new(&api_url);
    let sellers = seller::store::dynamo::DynamoStore::new(shared::dynamo::Table::new(
        aws_sdk_dynamodb::Client::new(&config),
        local.stack.reference("SellerTable").unwrap().to_owned(),
    ));
    let seed = Seed::create(&shop, &sellers).await;
    let (authorizers, _) = devstack::functions::http_api_auth(&template()).unwrap();
    let authorizers = authorizers.into_iter().map(|a| a.function).collect();
    let mut replay = Replay { ids: seed.ids(), local, config, shop, authorizers, replayed: BTreeSet::new() };
    let (customer, seller) = (seed.customer.id.as_str(), seed.seller.id.as_str());
    let (product, other_product) = (seed.products[0].as_str(), seed.products[1].as_str());
    let (order, payment) = (seed.order.0.as_str(), seed.order.1.as_str());
    let (second, second_payment) = (seed.second.0.as_str(), seed.second.1.as_str());
    eprintln!("provisioned and seeded in {:?}", started.elapsed());

    // The gateway's authorizer: the customer's token lets the request through as them.
    let verdict = replay.invoke("authorizer-request.json", "AuthorizerFunction", &[]).await;
    assert_eq!(verdict, json!({"isAuthorized": true, "context": {"user_id": customer, "role": "customer"}}));

    let health = replay.http("http-get-health.json", "HealthFunction", &[]).await;
    assert_eq!((health.status, health.body), (200, json!({"status": "ok"})));
    assert_eq!(health.headers["x-correlation-id"], "c-sample-health");

    let trace = replay.http("http-trace-default-route.json", "DefaultRouteFunction", &[]).await;
    assert_eq!(trace.status, 405);
    assert_eq!(trace.headers["allow"], "GET");

    // Identity.
    let email = format!("replay.{}@example.com", ulid::Ulid::generate().to_string().to_lowercase());
    let registered = replay.http("http-post-auth-register.json", "RegisterFunction", &[(NEW_EMAIL, &email)]).await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    assert_eq!(registered.body["user"]["email"], email);
    assert!(registered.body["access_token"].is_string());
    let newcomer = text(&registered.body["user"]["user_id"]);
    let login = replay.http("http-post-auth-login.json", "LoginFunction", &[]).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.body["user"]["user_id"], customer);
    let me = replay.http("http-get-auth-me.json", "MeFunction", &[]).await;
    assert_eq!((me.status, &me.body["user_id"], &me.body["email"]), (200, &json!(customer), &json!(CUSTOMER_EMAIL)));
    // Sessions: the login's refresh token for the next one, which logout then revokes.
    let spent = text(&login.body["refresh_token"]);
    let refreshed =
        replay.http("http-post-auth-refresh.json", "RefreshFunction", &[(SAMPLE_REFRESH_TOKEN, &spent)]).await;
    assert_eq!((refreshed.status, &refreshed.body["user"]["user_id"]), (200, &json!(customer)), "{}", refreshed.body);
    let next = text(&refreshed.body["refresh_token"]);
    let logout = replay.http("http-post-auth-logout.json", "LogoutFunction", &[(SAMPLE_REFRESH_TOKEN, &next)]).await;
    assert_eq!(logout.status, 204, "{}", logout.body);
    let after = replay.http("http-post-auth-refresh.json", "RefreshFunction", &[(SAMPLE_REFRESH_TOKEN, &next)]).await;
    assert_eq!(after.status, 401, "logged out: {}", after.body);
    let jwks = replay.http("http-get-jwks.json", "JwksFunction", &[]).await;
    assert_eq!((jwks.status, &jwks.headers["cache-control"]), (200, &json!("public, max-age=300")));
    assert_eq!(jwks.body["keys"][0]["kty"], "OKP", "{}", jwks.body);
    let user = replay.http("http-get-internal-user.json", "GetUserFunction", &[]).await;
    assert_eq!((user.status, &user.body["user_id"]), (200, &json!(customer)));

    // Catalogue.
    let created = replay.http("http-post-products.json", "CreateProductFunction", &[]).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!((&created.body["seller_id"], &created.body["price_cents"]), (&json!(seller), &json!(1299)));
    let new_product = text(&created.body["product_id"]);
    assert_eq!(created.headers["location"], format!("/products/{new_product}"));
    let got = replay.http("http-get-product.json", "GetProductFunction", &[]).await;
    assert_eq!((got.status, &got.body["product_id"]), (200, &json!(product)));
    let listed = replay.http("http-get-products.json", "ListProductsFunction", &[]).await;
    assert_eq!(listed.status, 200);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "limit=2 of the three books: {}", listed.body);
    assert!(items.iter().all(|p| p["category"] == "books"));
    let patched = replay.http("http-patch-product.json", "UpdateProductFunction", &[]).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!((&patched.body["price_cents"], &patched.body["stock"]), (&json!(1199), &json!(48)));
    let looked_up = replay.http("http-post-internal-lookup.json", "LookupProductsFunction", &[]).await;
    assert_eq!(looked_up.status, 200);
    let found: Vec<_> = looked_up.body["items"].as_array().unwrap().iter().map(|p| text(&p["product_id"])).collect();
    assert_eq!(found, [product]);

    // A product of the seeded seller's own, deleted by them: gone from the catalogue.
    let doomed = replay.shop.product(&seed.seller, PRICE, 1).await;
    let deleted = replay.http("http-delete-product.json", "DeleteProductFunction", &[(PRODUCT, &doomed)]).await;
    assert_eq!((deleted.status, &deleted.body), (204, &Value::Null));
    let gone = replay.shop.http.get(replay.shop.url(&format!("/products/{doomed}"))).send().await.unwrap();
    assert_eq!(gone.status(), 404);

    // Sellers: the seeded seller (approved as it was seeded), suspended, then approved again.
    let me = replay.http("http-get-seller-me.json", "GetMySellerFunction", &[]).await;
    assert_eq!((me.status, &me.body["seller_id"], &me.body["status"]), (200, &json!(seller), &json!("approved")));
    let pending = replay.http("http-get-admin-sellers.json", "ListSellersFunction", &[]).await;
    assert_eq!(pending.status, 200, "{}", pending.body);
    assert!(pending.body["items"].as_array().unwrap().iter().all(|s| s["status"] == "pending"), "{}", pending.body);
    let suspended = replay.http("http-post-admin-suspend-seller.json", "SuspendSellerFunction", &[]).await;
    assert_eq!((suspended.status, &suspended.body["status"]), (200, &json!("suspended")), "{}", suspended.body);
    let approved = replay.http("http-post-admin-approve-seller.json", "ApproveSellerFunction", &[]).await;
    assert_eq!((approved.status, &approved.body["status"]), (200, &json!("approved")), "{}", approved.body);
    // A seller's registration (the sample, as a new seller's) makes their pending profile.
    let newcomer_seller = fresh("usr");
    let as_seller = [(CUSTOMER, newcomer_seller.as_str()), (r#"role\":\"customer"#, r#"role\":\"seller"#)];
    replay.sqs("sqs-user-registered.json", "SettleReservationsFunction", &as_seller).await;
    let admin = replay.shop.admin().await;
    let listed: Value = replay.shop.get(&admin, "/admin/sellers?status=pending&limit=100").await.json().await.unwrap();
    assert!(listed["items"].as_array().unwrap().iter().any(|s| s["seller_id"] == newcomer_seller.as_str()), "{listed}");

    // Cart and checkout.
    let cart_lines = |cart: &Value| -> Vec<(String, u64)> {
        let lines = cart["items"].as_array().unwrap_or_else(|| panic!("no cart: {cart}"));
        lines.iter().map(|l| (text(&l["product_id"]), l["quantity"].as_u64().unwrap())).collect()
    };
    let put = replay.http("http-put-cart-item.json", "SetCartItemFunction", &[]).await;
    assert_eq!((put.status, cart_lines(&put.body)), (200, vec![(product.to_owned(), 2)]));
    let cart = replay.http("http-get-cart.json", "GetCartFunction", &[]).await;
    assert_eq!((cart.status, cart_lines(&cart.body)), (200, vec![(product.to_owned(), 2)]));
    let removed = replay.http("http-delete-cart-item.json", "RemoveCartItemFunction", &[]).await;
    assert_eq!((removed.status, cart_lines(&removed.body)), (200, vec![]));
    replay.shop.put_in_cart(&seed.customer, product, 2).await;
    let bought = replay.http("http-post-checkout.json", "CheckoutFunction", &[]).await;
    assert_eq!(bought.status, 201, "{}", bought.body);
    assert_eq!((&bought.body["status"], &bought.body["total_cents"]), (&json!("placed"), &json!(2 * 1199)));
    let (checked_out, checked_out_payment) = (text(&bought.body["order_id"]), text(&bought.body["payment_id"]));
    assert_eq!(bought.headers["location"], format!("/orders/{checked_out}"));

    // The internal routes checkout calls, each with ids of its own.
    let reservation = fresh("rsv");
    let held = replay
        .http("http-post-internal-reservation.json", "ReserveStockFunction", &[(RESERVATION, &reservation)])
        .await;
    assert_eq!((held.status, &held.body["status"]), (201, &json!("held")), "{}", held.body);
    let released = replay
        .http("http-delete-internal-reservation.json", "ReleaseReservationFunction", &[(RESERVATION, &reservation)])
        .await;
    assert_eq!((released.status, &released.body["status"]), (200, &json!("released")), "{}", released.body);
    let new_order = fresh("ord");
    let authorized =
        replay.http("http-post-internal-authorize.json", "AuthorizePaymentFunction", &[(ORDER, &new_order)]).await;
    assert_eq!(authorized.status, 201, "{}", authorized.body);
    assert_eq!((&authorized.body["status"], &authorized.body["amount_cents"]), (&json!("authorized"), &json!(TOTAL)));
    let new_payment = text(&authorized.body["payment_id"]);
    let voided = replay.http("http-post-internal-void.json", "VoidPaymentFunction", &[(PAYMENT, &new_payment)]).await;
    assert_eq!((voided.status, &voided.body["status"]), (200, &json!("voided")), "{}", voided.body);
    let made = replay
        .http(
            "http-post-internal-order.json",
            "CreateOrderFunction",
            &[(ORDER, &new_order), (PAYMENT, &new_payment), (RESERVATION, &reservation)],
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!((&made.body["order_id"], &made.body["total_cents"]), (&json!(new_order), &json!(TOTAL)));
    let given_up = fresh("ord");
    let abandoned =
        replay.http("http-post-internal-abandon-order.json", "AbandonOrderFunction", &[(ORDER, &given_up)]).await;
    assert_eq!((abandoned.status, abandoned.body), (200, json!({"order_id": given_up, "abandoned": true})));

    // Orders and payments as their owner sees them.
    let got = replay.http("http-get-order.json", "GetOrderFunction", &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!((&got.body["order_id"], &got.body["status"]), (&json!(order), &json!("placed")));
    assert_eq!(got.body["total_cents"], TOTAL);
    let orders = replay.http("http-get-orders.json", "ListOrdersFunction", &[]).await;
    assert_eq!(orders.status, 200);
    let ids: BTreeSet<_> = orders.body["items"].as_array().unwrap().iter().map(|o| text(&o["order_id"])).collect();
    // The seeded two, the checkout sample's and the internal order sample's (the customer's too).
    assert_eq!(ids, [order, second, &checked_out, &new_order].into_iter().map(str::to_owned).collect());
    let paid = replay.http("http-get-payment.json", "GetPaymentFunction", &[]).await;
    assert_eq!(paid.status, 200);
    assert_eq!((&paid.body["payment_id"], &paid.body["status"]), (&json!(payment), &json!("authorized")));
    let cancelled = replay.http("http-post-cancel-order.json", "CancelOrderFunction", &[(ORDER, second)]).await;
    assert_eq!((cancelled.status, &cancelled.body["status"]), (200, &json!("cancelled")), "{}", cancelled.body);

    // Notifications: the sample's preferences (email and SMS), then its welcome on both.
    let chosen = replay.http("http-put-notifications-preferences.json", "PutPreferencesFunction", &[]).await;
    assert_eq!(chosen.status, 200, "{}", chosen.body);
    let kept = replay.http("http-get-notifications-preferences.json", "GetPreferencesFunction", &[]).await;
    assert_eq!(kept.body, chosen.body);
    replay.sqs("sqs-user-registered.json", "NotifyFunction", &[]).await;
    let notifications = replay.http("http-get-notifications.json", "ListNotificationsFunction", &[]).await;
    assert_eq!(notifications.status, 200);
    let templates: Vec<_> =
        notifications.body["items"].as_array().unwrap().iter().map(|n| text(&n["template"])).collect();
    assert_eq!(templates, ["welcome"]);
    let channels: Vec<_> = notifications.body["items"][0]["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (text(&d["channel"]), text(&d["status"])))
        .collect();
    assert_eq!(channels, [("email".into(), "sent".into()), ("sms".into(), "sent".into())]);
    // The bounce of that address: suppressed, so the next message's email is not sent.
    replay.sqs("ses-feedback-bounce.json", "SuppressFunction", &[]).await;
    replay.sqs("sqs-payment-failed.json", "NotifyFunction", &[]).await;
    let notifications = replay.http("http-get-notifications.json", "ListNotificationsFunction", &[]).await;
    let newest = &notifications.body["items"][0];
    assert_eq!(newest["template"], "payment_failed", "{newest}");
    assert_eq!(newest["deliveries"][0]["status"], "failed", "{newest}");
    assert_eq!(newest["deliveries"][1]["status"], "sent", "the SMS still goes: {newest}");
    // A phone registered for push (an SNS endpoint), then removed.
    let device = replay.http("http-post-notifications-devices.json", "RegisterDeviceFunction", &[]).await;
    assert_eq!((device.status, &device.body["platform"]), (201, &json!("GCM")), "{}", device.body);
    let device_id = text(&device.body["device_id"]);
    let sample_device = "dev_5e3e984731833f18a7e8671c3a57d4b3";
    let removed = replay
        .http("http-delete-notifications-device.json", "RemoveDeviceFunction", &[(sample_device, &device_id)])
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);

    // The order's events, each to a consumer of its queue, and the change each documents.
    replay.sqs("sqs-order-created.json", "SettleReservationsFunction", &[]).await;
    assert_eq!(replay.reservation_status(&reservation_of(order)).await, "committed");
    replay.sqs("sqs-order-created.json", "SettlePaymentsFunction", &[]).await;
    assert_eq!(replay.payment_status(payment).await, "settled");
    // Stripe's word on that capture, after settlement recorded it: nothing left to change.
    let webhook = replay.stripe_webhook(payment).await;
    assert_eq!((webhook.status, &webhook.body), (200, &json!({"received": true, "outcome": "unchanged"})));
    assert_eq!(webhook.headers["x-correlation-id"], "c-sample-webhook");
    assert_eq!(replay.payment_status(payment).await, "settled");
    replay.sqs("sqs-payment-completed.json", "ApplyPaymentsFunction", &[]).await;
    assert_eq!(replay.order_status(order).await, "paid");
    replay.sqs("sqs-inventory-updated.json", "ApplyPaymentsFunction", &[]).await;
    assert_eq!(replay.order_status(order).await, "paid", "inventory.updated needs nothing of orders");

    // The paid order's shipment, as its seller lists, ships and delivers it.
    let listed = replay.http("http-get-seller-shipments.json", "ListShipmentsFunction", &[]).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let pending = listed.body["items"].as_array().unwrap();
    let of_orders: Vec<_> = pending.iter().map(|s| text(&s["order_id"])).collect();
    assert_eq!(of_orders, [order], "only the paid order's shipment is the seller's to ship");
    let shipment = text(&pending[0]["shipment_id"]);
    let shipped = replay.http("http-post-ship-shipment.json", "ShipShipmentFunction", &[(SHIPMENT, &shipment)]).await;
    assert_eq!((shipped.status, &shipped.body["status"]), (200, &json!("shipped")), "{}", shipped.body);
    assert_eq!(
        (&shipped.body["carrier"], &shipped.body["tracking_number"]),
        (&json!("UPS"), &json!("1Z999AA10123456784"))
    );
    assert_eq!(replay.order_status(order).await, "shipped", "its one shipment shipped");
    let delivered =
        replay.http("http-post-deliver-shipment.json", "DeliverShipmentFunction", &[(SHIPMENT, &shipment)]).await;
    assert_eq!((delivered.status, &delivered.body["status"]), (200, &json!("delivered")), "{}", delivered.body);
    assert_eq!(replay.order_status(order).await, "delivered");
    replay.sqs("sqs-order-completed.json", "CartEventsFunction", &[]).await;
    let purchase = replay
        .dynamo()
        .get_item()
        .table_name(replay.local.stack.reference("CartTable").unwrap())
        .key("pk", AttributeValue::S(format!("CART#{customer}")))
        .key("sk", AttributeValue::S(format!("PURCHASE#{order}")))
        .send()
        .await
        .unwrap();
    assert!(purchase.item.is_some(), "a purchase record for the completed order");
    let failed = [(ORDER, checked_out.as_str()), (PAYMENT, checked_out_payment.as_str())];
    replay.sqs("sqs-payment-failed.json", "ApplyPaymentsFunction", &failed).await;
    assert_eq!(replay.order_status(&checked_out).await, "payment_failed");
    let second_ids = [(ORDER, second), (PAYMENT, second_payment), (RESERVATION, &reservation_of(second))];
    replay.sqs("sqs-order-cancelled.json", "SettleReservationsFunction", &second_ids).await;
    assert_eq!(replay.reservation_status(&reservation_of(second)).await, "released");
    replay.sqs("sqs-payment-refunded.json", "NotifyFunction", &[]).await;
    // (payment_failed: the notification of the bounce check above.)
    let before = ["payment_failed", "welcome"];
    assert_eq!(replay.notifications(&seed.customer).await, before, "payment.refunded sends nothing");
    let shipment_ids = [(SHIPMENT, shipment.as_str())];
    replay.sqs("sqs-order-shipped.json", "NotifyFunction", &shipment_ids).await;
    replay.sqs("sqs-order-delivered.json", "NotifyFunction", &shipment_ids).await;
    let mut sent = replay.notifications(&seed.customer).await;
    sent.sort();
    assert_eq!(sent, ["order_delivered", "order_shipped", "payment_failed", "welcome"], "one each");
    replay.sqs("sqs-seller-suspended.json", "NotifyFunction", &[]).await;
    replay.sqs("sqs-seller-approved.json", "NotifyFunction", &[]).await;
    let to_seller = replay.notifications(&seed.seller).await;
    for template in ["seller_suspended", "seller_approved"] {
        assert_eq!(to_seller.iter().filter(|t| *t == template).count(), 1, "{template} once: {to_seller:?}");
    }

    // AI Buddy learns the order, then answers from it.
    replay.sqs("sqs-order-created.json", "LearnFunction", &[]).await;
    replay.sqs("sqs-order-completed.json", "LearnFunction", &[]).await;
    // A purchase counts when it is paid (order.completed); shipping and delivery change no count.
    replay.sqs("sqs-order-shipped.json", "LearnFunction", &shipment_ids).await;
    replay.sqs("sqs-order-delivered.json", "LearnFunction", &shipment_ids).await;
    let analytics = replay.http("http-get-analytics.json", "AnalyticsFunction", &[]).await;
    assert_eq!(analytics.status, 200, "{}", analytics.body);
    let sales = (&analytics.body["orders"], &analytics.body["units_sold"], &analytics.body["revenue_cents"]);
    assert_eq!(sales, (&json!(1), &json!(3), &json!(TOTAL)), "{}", analytics.body);
    // As the register sample's user, who bought nothing: the popular products, best first.
    let recommended =
        replay.http("http-get-recommendations.json", "RecommendationsFunction", &[(CUSTOMER, &newcomer)]).await;
    assert_eq!(recommended.status, 200, "{}", recommended.body);
    let items = recommended.body["items"].as_array().unwrap();
    let found: Vec<_> = items.iter().map(|i| (text(&i["product_id"]), text(&i["reason"]))).collect();
    assert!(found.iter().all(|(_, reason)| reason == "popular"), "{}", recommended.body);
    // The order's two sold 2 and 1; the rest of the catalogue none.
    let best: Vec<_> = found.iter().take(2).map(|(id, _)| id.as_str()).collect();
    assert_eq!(best, [product, other_product], "{}", recommended.body);
    assert!(items.iter().skip(2).all(|i| i["score"] == 0.0), "{}", recommended.body);
    let assistant = replay.http("http-post-assistant.json", "AssistantFunction", &[]).await;
    assert_eq!((assistant.status, &assistant.body["intent"]), (200, &json!("order_status")), "{}", assistant.body);
    assert!(text(&assistant.body["reply"]).contains(order), "the latest order: {}", assistant.body);

    // The scheduled functions.
    replay
        .relay(
            "schedule-auth-outbox-relay.json",
            "AuthOutboxRelayFunction",
            "sqs-user-registered.json",
            "AuthTable",
            "CartEventsQueue",
        )
        .await;
    replay
        .relay(
            "schedule-order-outbox-relay.json",
            "OrderOutboxRelayFunction",
            "sqs-order-created.json",
            "OrderTable",
            "SellerUpdatesQueue",
        )
        .await;
    replay
        .relay(
            "schedule-payment-outbox-relay.json",
            "PaymentOutboxRelayFunction",
            "sqs-payment-completed.json",
            "PaymentTable",
            "OrderUpdatesQueue",
        )
        .await;
    replay
        .relay(
            "schedule-seller-outbox-relay.json",
            "SellerOutboxRelayFunction",
            "sqs-seller-approved.json",
            "SellerTable",
            "NotificationQueue",
        )
        .await;
    // A checkout whose function died two hours ago, mid-way: the reconciler undoes it.
    let carts = cart::store::dynamo::DynamoStore::new(replay.table("CartTable"));
    let two_hours_ago = chrono::Utc::now() - chrono::Duration::hours(2);
    let stale = cart::domain::Checkout::start(
        customer,
        "key:left-behind",
        "tok_visa",
        0,
        two_hours_ago,
        cart::handlers::checkout::LEASE,
    );
    assert!(carts.save_checkout(&stale, None).await.unwrap());
    let report = replay.invoke("schedule-reconcile-checkouts.json", "ReconcileCheckoutsFunction", &[]).await;
    assert_eq!(report, json!({"abandoned": 1, "finished": 0, "left": 0}));
    let undone = carts.checkout(customer, "key:left-behind").await.unwrap().unwrap();
    assert_eq!(undone.status, cart::domain::CheckoutStatus::Retryable);

    let all: BTreeSet<_> = SAMPLES.iter().map(|(f, n)| ((*f).to_owned(), (*n).to_owned())).collect();
    let missed: Vec<_> = all.difference(&replay.replayed).collect();
    assert!(missed.is_empty(), "in SAMPLES but not replayed: {missed:?}");
    let functions: BTreeSet<_> = replay.replayed.iter().map(|(_, function)| function).collect();
    eprintln!("replayed {} samples to {} functions in {:?}", all.len(), functions.len(), started.elapsed());
    replay.local.runtime.stop().await;
}
