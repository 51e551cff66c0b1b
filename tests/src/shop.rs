//! A shop on the local stack, driven through its public API as clients drive it.

use std::ops::Deref;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::LocalApi;

/// A local stack of its own (`devstack serve`), and a client of its API.
pub struct Shop {
    pub api: LocalApi,
    client: ShopClient,
}

/// A client of a running shop's public API (tests and benchmarks).
pub struct ShopClient {
    pub base_url: String,
    pub http: reqwest::Client,
    /// How often the `wait_for_*` methods look again.
    pub poll_every: Duration,
    /// The stack's admin's access token, once logged in.
    admin_token: std::sync::Mutex<Option<String>>,
}

/// A registered user's bearer token and id.
#[derive(Clone)]
pub struct User {
    pub token: String,
    pub id: String,
}

impl Shop {
    pub async fn open(parameters: &[(&str, &str)]) -> Self {
        Self::around(LocalApi::start_with(parameters).await)
    }

    /// A shop on a stack already started (e.g. behind a fault proxy).
    pub fn around(api: LocalApi) -> Self {
        let client = ShopClient::new(&api.url);
        Self { api, client }
    }
}

impl Shop {
    /// Registers a device of `who` for push: its id and its SNS endpoint (as the Notification
    /// table keeps it; the API does not show it).
    pub async fn register_device(&self, who: &User, platform: &str, token: &str) -> (String, String) {
        let post = self.http.post(self.url("/notifications/devices")).bearer_auth(&who.token);
        let answer = post.json(&json!({"platform": platform, "token": token})).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED);
        let device: Value = answer.json().await.unwrap();
        assert_eq!(device["platform"], platform);
        let device_id = device["device_id"].as_str().unwrap().to_owned();
        let dynamo = aws_sdk_dynamodb::Client::new(&crate::emulator().await);
        let key = shared::dynamo::key(format!("USER#{}", who.id), format!("DEVICE#{device_id}"));
        let table = self.api.reference("NotificationTable");
        let found = dynamo.get_item().table_name(table).set_key(Some(key)).send().await.unwrap();
        let endpoint_arn = found.item.expect("the device's record")["endpoint_arn"].as_s().unwrap().clone();
        (device_id, endpoint_arn)
    }
}

impl Deref for Shop {
    type Target = ShopClient;

    fn deref(&self) -> &ShopClient {
        &self.client
    }
}

impl ShopClient {
    pub fn new(base_url: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
            poll_every: Duration::from_millis(200),
            admin_token: std::sync::Mutex::new(None),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A new user with a fresh email address; a seller is approved by the admin, so that they
    /// can list products at once (`sign_up` leaves a seller pending).
    pub async fn register(&self, role: &str) -> User {
        let email = format!("{role}.{}@example.com", ulid::Ulid::generate().to_string().to_lowercase());
        let user = self.sign_up(&email, "correct horse", role).await;
        if role == "seller" {
            self.approve(&user.id).await;
        }
        user
    }

    /// The stack's admin (devstack made it from ADMIN_EMAIL / ADMIN_PASSWORD, or the defaults).
    pub async fn admin(&self) -> User {
        if let Some(token) = self.admin_token.lock().unwrap().clone() {
            return User { token, id: String::new() };
        }
        let account = auth::admin::AdminAccount::from_env();
        let login = json!({"email": account.email, "password": account.password});
        let answer = self.http.post(self.url("/auth/login")).json(&login).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "the admin logs in");
        let session: Value = answer.json().await.unwrap();
        let token = session["access_token"].as_str().unwrap().to_owned();
        *self.admin_token.lock().unwrap() = Some(token.clone());
        User { token, id: session["user"]["user_id"].as_str().unwrap().to_owned() }
    }

    /// The admin approves a seller, once their profile exists (made from `user.registered`).
    pub async fn approve(&self, seller_id: &str) -> Value {
        self.seller_status(seller_id, "approve", None).await
    }

    /// The admin suspends a seller.
    pub async fn suspend(&self, seller_id: &str, reason: &str) -> Value {
        self.seller_status(seller_id, "suspend", Some(json!({"reason": reason}))).await
    }

    async fn seller_status(&self, seller_id: &str, action: &str, body: Option<Value>) -> Value {
        let admin = self.admin().await;
        let url = self.url(&format!("/admin/sellers/{seller_id}/{action}"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut request = self.http.post(&url).bearer_auth(&admin.token);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let answer = request.send().await.unwrap();
            if answer.status() == StatusCode::NOT_FOUND && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(self.poll_every).await;
                continue;
            }
            assert_eq!(answer.status(), StatusCode::OK, "{action} {seller_id}");
            return answer.json().await.unwrap();
        }
    }

    /// Registers from an address of its own: each user is another client, as customers are
    /// (registrations are throttled per client address; auth.rs tests that).
    pub async fn sign_up(&self, email: &str, password: &str, role: &str) -> User {
        static CLIENTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = CLIENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let address = std::net::Ipv4Addr::new(127, 1, (n / 250 % 250) as u8, (n % 250 + 1) as u8);
        let http = reqwest::Client::builder().local_address(std::net::IpAddr::V4(address)).build().unwrap();
        let body = json!({"email": email, "password": password, "name": role, "role": role});
        let session: Value =
            http.post(self.url("/auth/register")).json(&body).send().await.unwrap().json().await.unwrap();
        User {
            token: session["access_token"].as_str().unwrap().to_owned(),
            id: session["user"]["user_id"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn product(&self, seller: &User, price_cents: u64, stock: u32) -> String {
        let body = json!({"name": "Dune", "category": "books", "price_cents": price_cents, "stock": stock});
        let created =
            self.http.post(self.url("/products")).bearer_auth(&seller.token).json(&body).send().await.unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        created.json::<Value>().await.unwrap()["product_id"].as_str().unwrap().to_owned()
    }

    /// The seller spreads a product's stock over `shards` items (docs/capacity.md), as for a sale.
    pub async fn shard_stock(&self, seller: &User, product_id: &str, shards: u32) -> Value {
        let url = self.url(&format!("/products/{product_id}"));
        let body = json!({"stock_shards": shards});
        let changed = self.http.patch(url).bearer_auth(&seller.token).json(&body).send().await.unwrap();
        assert_eq!(changed.status(), StatusCode::OK);
        changed.json().await.unwrap()
    }

    pub async fn stock(&self, product_id: &str) -> u64 {
        let product: Value =
            self.http.get(self.url(&format!("/products/{product_id}"))).send().await.unwrap().json().await.unwrap();
        product["stock"].as_u64().unwrap()
    }

    pub async fn put_in_cart(&self, customer: &User, product_id: &str, quantity: u32) {
        let url = self.url(&format!("/cart/items/{product_id}"));
        let answer =
            self.http.put(url).bearer_auth(&customer.token).json(&json!({"quantity": quantity})).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }

    pub async fn cart(&self, customer: &User) -> Value {
        self.http.get(self.url("/cart")).bearer_auth(&customer.token).send().await.unwrap().json().await.unwrap()
    }

    pub async fn checkout(&self, customer: &User, token: &str, key: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url("/cart/checkout"))
            .bearer_auth(&customer.token)
            .json(&json!({"payment_token": token}));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.unwrap()
    }

    pub async fn get(&self, who: &User, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(&who.token).send().await.unwrap()
    }
}

impl ShopClient {
    /// An order as its owner sees it.
    pub async fn order(&self, customer: &User, order_id: &str) -> Value {
        self.get(customer, &format!("/orders/{order_id}")).await.json().await.unwrap()
    }

    /// The payment of an order (as the order shows it), as its owner sees it.
    pub async fn payment_of(&self, customer: &User, order: &Value) -> Value {
        let payment_id = order["payment_id"].as_str().expect("the order names its payment");
        self.get(customer, &format!("/payments/{payment_id}")).await.json().await.unwrap()
    }

    /// Polls `check` on the order until it holds or `timeout` passes; the order last seen.
    pub async fn wait_for_order(
        &self,
        customer: &User,
        order_id: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let order = self.order(customer, order_id).await;
            if check(&order) || tokio::time::Instant::now() >= deadline {
                return order;
            }
            tokio::time::sleep(self.poll_every).await;
        }
    }

    /// The templates of the customer's notifications (newest first), once all of `wanted`
    /// are there or `timeout` passed.
    pub async fn wait_for_notifications(&self, customer: &User, wanted: &[&str], timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let listed: Value = self.get(customer, "/notifications").await.json().await.unwrap();
            let templates: Vec<String> = listed["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["template"].as_str().map(str::to_owned))
                .collect();
            if wanted.iter().all(|w| templates.iter().any(|t| t == w)) || tokio::time::Instant::now() >= deadline {
                return templates;
            }
            tokio::time::sleep(self.poll_every).await;
        }
    }

    /// The customer cancels one of their orders.
    pub async fn cancel(&self, customer: &User, order_id: &str) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/orders/{order_id}/cancel")))
            .bearer_auth(&customer.token)
            .send()
            .await
            .unwrap()
    }

    /// A seller's shipments in `status` (one page).
    pub async fn shipments(&self, seller: &User, status: &str) -> Vec<Value> {
        let listed = self.get(seller, &format!("/seller/shipments?status={status}")).await;
        assert_eq!(listed.status(), StatusCode::OK);
        let page: Value = listed.json().await.unwrap();
        page["items"].as_array().unwrap().clone()
    }

    /// A seller's one pending shipment of `order_id`, once the order is paid.
    pub async fn pending_shipment(&self, seller: &User, order_id: &str) -> Value {
        let found = crate::eventually(Duration::from_secs(30), || async {
            self.shipments(seller, "pending").await.into_iter().find(|s| s["order_id"] == order_id)
        })
        .await;
        found.unwrap_or_else(|| panic!("no pending shipment of {order_id}"))
    }

    /// `POST /seller/shipments/{id}/ship` with UPS and `tracking`: the status and the body.
    pub async fn ship(&self, seller: &User, shipment_id: &str, tracking: &str) -> (StatusCode, Value) {
        let url = self.url(&format!("/seller/shipments/{shipment_id}/ship"));
        let body = json!({"carrier": "UPS", "tracking_number": tracking});
        let answer = self.http.post(url).bearer_auth(&seller.token).json(&body).send().await.unwrap();
        (answer.status(), answer.json().await.unwrap_or(Value::Null))
    }

    /// `POST /seller/shipments/{id}/deliver`: the status and the body.
    pub async fn deliver(&self, seller: &User, shipment_id: &str) -> (StatusCode, Value) {
        let url = self.url(&format!("/seller/shipments/{shipment_id}/deliver"));
        let answer = self.http.post(url).bearer_auth(&seller.token).send().await.unwrap();
        (answer.status(), answer.json().await.unwrap_or(Value::Null))
    }
}
