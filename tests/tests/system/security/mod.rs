//! Hardening (issue 9): what an attacker can try through the HTTP API, against a local stack,
//! and a static check of every IAM grant in template.yaml.
//!
//! Routes and their guards come from template.yaml (`HttpApi` events and their authorizer),
//! request bodies from the samples in `events/`, so a new route is covered without a change
//! here. Every answer each test gets goes through [`Client::assert_clean`]: no 5xx, every
//! error a problem+json with the request's correlation id, and nothing that tells an attacker
//! about our insides (stack traces, AWS errors, ARNs, the signing key, resource names).
//!
//! This module holds what every part shares (the routes, a client that checks every answer,
//! forged tokens, a world of real ids); each part is a module: `iam` (static checks of the
//! template), `tokens` (forged tokens and signatures, unmatched routes), `access` (one user,
//! another's things; mass assignment), `inputs` (sizes, throttling, broken requests).

mod access;
mod iam;
mod inputs;
mod tokens;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use futures_util::{StreamExt, stream};
use jsonwebtoken::Algorithm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use system_tests::LocalApi;
use system_tests::shop::ShopClient;
use system_tests::tokens::{Forger, foreign_key, forge};

/// The body size docs/api.md allows; one byte more is a 413.
const MAX_BODY: usize = 64 * 1024;
/// Every test user's password: no answer may ever contain it.
const PASSWORD: &str = "correct horse battery staple";
const CONCURRENCY: usize = 12;

// ---------------------------------------------------------------- routes, from template.yaml

#[derive(Debug, Clone, PartialEq, Eq)]
enum Guard {
    Public,
    /// A Lambda (token) authorizer, by name.
    Token(String),
    /// `AWS_IAM`: SigV4 only.
    Iam,
}

#[derive(Debug, Clone)]
struct Route {
    method: Method,
    path: String,
    guard: Guard,
    /// The request API Gateway sends for this route, from `events/` (if there is one).
    sample: Option<Value>,
}

impl Route {
    fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn parameters(&self) -> Vec<&str> {
        self.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect()
    }

    /// The path with each `{parameter}` replaced by `value(parameter)` (already URL-safe).
    fn path_with(&self, value: impl Fn(&str) -> String) -> String {
        self.path
            .split('/')
            .map(|segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => value(name),
                None => segment.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The sample's JSON body, if the route takes one.
    fn sample_body(&self) -> Option<Value> {
        let body = self.sample.as_ref()?["body"].as_str()?;
        serde_json::from_str(body).ok()
    }
}

/// Every route of template.yaml with its guard: the event's `Auth.Authorizer`, else the
/// API's `DefaultAuthorizer`, else none.
fn routes() -> Vec<Route> {
    let template = system_tests::template();
    let samples = samples();
    let mut routes = Vec::new();
    for (id, function) in template.resources.iter().filter(|(_, r)| r.kind == "AWS::Serverless::Function") {
        for event in function.properties["Events"].as_object().into_iter().flatten().map(|(_, e)| e) {
            // The $default route (no Path, no Method) is no route of its own: tested below.
            if event["Type"] != "HttpApi" || event["Properties"].get("Path").is_none() {
                continue;
            }
            let properties = &event["Properties"];
            let api = properties["ApiId"]["Ref"].as_str().unwrap_or("ServerlessHttpApi");
            let api_auth = template.resources.get(api).map(|a| a.properties["Auth"].clone()).unwrap_or_default();
            let authorizer = properties["Auth"]["Authorizer"].as_str().or(api_auth["DefaultAuthorizer"].as_str());
            let guard = match authorizer {
                None | Some("NONE") => Guard::Public,
                Some("AWS_IAM") => Guard::Iam,
                Some(name) => {
                    assert!(api_auth["Authorizers"].get(name).is_some(), "{id}: authorizer {name} is not declared");
                    Guard::Token(name.to_owned())
                }
            };
            let method = properties["Method"].as_str().expect("a method").to_uppercase();
            let path = properties["Path"].as_str().expect("a path").to_owned();
            let sample = samples.get(&format!("{method} {path}")).cloned();
            routes.push(Route { method: Method::from_bytes(method.as_bytes()).unwrap(), path, guard, sample });
        }
    }
    assert!(routes.len() >= 20, "template.yaml declares the API's routes");
    routes.sort_by_key(Route::key);
    routes
}

/// The `events/http-*.json` samples by route key.
fn samples() -> BTreeMap<String, Value> {
    let dir = devstack::repo_root().join("events");
    std::fs::read_dir(&dir)
        .expect("events/ exists")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("http-")))
        .filter_map(|path| {
            let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
            Some((event["routeKey"].as_str()?.to_owned(), event))
        })
        .collect()
}

/// `value` with every id the stack knows put in place of the sample's: fields named like a
/// key of `ids` (and `product_ids`) get the real ids, so a request that got through would act
/// on real data.
fn with_ids(value: &Value, ids: &BTreeMap<&str, String>) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, field)| {
                    let replaced = match (ids.get(name.as_str()), field) {
                        (Some(id), Value::String(_)) => Value::String(id.clone()),
                        _ if name == "product_ids" && ids.contains_key("product_id") => json!([ids["product_id"]]),
                        _ => with_ids(field, ids),
                    };
                    (name.clone(), replaced)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|item| with_ids(item, ids)).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------- a client that keeps every answer

#[derive(Debug, Clone)]
struct Answer {
    what: String,
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// API Gateway's own refusal of a request no function saw (an IAM route without a valid
    /// signature): `{"message": "Forbidden"}`, as on AWS.
    fn is_gateways_forbidden(&self) -> bool {
        self.status == StatusCode::FORBIDDEN
            && self.content_type() == "application/json"
            && self.json() == json!({"message": "Forbidden"})
    }

    /// `status`, as a problem+json (or panics with what came instead).
    fn expect_problem(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}: {}", self.what, self.body);
        assert_eq!(self.content_type(), "application/problem+json", "{}", self.what);
        self.json()
    }

    fn expect(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}: {}", self.what, self.body);
        self.json()
    }
}

/// A signed-up user.
#[derive(Debug, Clone)]
struct User {
    id: String,
    token: String,
}

struct Client {
    url: String,
    http: reqwest::Client,
    seen: Mutex<Vec<Answer>>,
    /// The shop's own client, for what only the admin does (approving a seller).
    shop: ShopClient,
}

impl Client {
    fn new(api: &LocalApi) -> Self {
        Self::from_address(api, "127.0.0.1")
    }

    /// A client connecting from the loopback address `ip`: another client address, as the
    /// API sees it (`sourceIp`).
    fn from_address(api: &LocalApi, ip: &str) -> Self {
        let address: std::net::IpAddr = ip.parse().unwrap();
        let http = reqwest::Client::builder().local_address(address).timeout(Duration::from_secs(30)).build().unwrap();
        Self { url: api.url.clone(), http, seen: Mutex::new(Vec::new()), shop: ShopClient::new(&api.url) }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url))
    }

    async fn send(&self, what: impl Into<String>, request: reqwest::RequestBuilder) -> Answer {
        let what = what.into();
        let response = request.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.bytes().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let answer = Answer { what, status, headers, body: String::from_utf8_lossy(&bytes).into_owned() };
        self.seen.lock().unwrap().push(answer.clone());
        answer
    }

    /// `method path` as `who`, with a JSON body.
    async fn call(&self, who: Option<&User>, method: Method, path: impl AsRef<str>, body: Option<Value>) -> Answer {
        let path = path.as_ref();
        let what = format!("{method} {path}");
        let mut request = self.request(method, path);
        if let Some(user) = who {
            request = request.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(what, request).await
    }

    /// A request signed as the local functions sign internal calls (SigV4, `execute-api`).
    fn signed(&self, method: Method, path: &str, body: Vec<u8>, signer: &Signer) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.url);
        let headers = shared::sigv4::signing_headers(
            method.as_str(),
            &url,
            &[],
            &body,
            &signer.credentials,
            "us-east-1",
            signer.time,
        )
        .unwrap();
        let mut request = self.http.request(method, &url).header("content-type", "application/json").body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request
    }

    async fn register(&self, role: &str) -> User {
        let email = format!("{role}.{}@example.com", ulid::Ulid::generate().to_string().to_lowercase());
        let body = json!({"email": email, "password": PASSWORD, "name": role, "role": role});
        let session = self.call(None, Method::POST, "/auth/register", Some(body)).await.expect(StatusCode::CREATED);
        let user = User {
            id: session["user"]["user_id"].as_str().unwrap().to_owned(),
            token: session["access_token"].as_str().unwrap().to_owned(),
        };
        // A seller lists products only once the admin approved them.
        if role == "seller" {
            self.shop.approve(&user.id).await;
        }
        user
    }

    async fn product(&self, seller: &User, price_cents: u64, stock: u64) -> String {
        let body = json!({"name": "Dune", "category": "books", "price_cents": price_cents, "stock": stock});
        let created = self.call(Some(seller), Method::POST, "/products", Some(body)).await.expect(StatusCode::CREATED);
        created["product_id"].as_str().unwrap().to_owned()
    }

    async fn put_in_cart(&self, who: &User, product_id: &str, quantity: u32) {
        let path = format!("/cart/items/{product_id}");
        self.call(Some(who), Method::PUT, &path, Some(json!({"quantity": quantity}))).await.expect(StatusCode::OK);
    }

    /// Checks out `who`'s cart: the order.
    async fn checkout(&self, who: &User, key: &str, body: Value) -> Value {
        let request =
            self.request(Method::POST, "/cart/checkout").bearer_auth(&who.token).header("idempotency-key", key);
        self.send("POST /cart/checkout", request.json(&body)).await.expect(StatusCode::CREATED)
    }

    async fn get(&self, who: &User, path: &str) -> Answer {
        self.call(Some(who), Method::GET, path, None).await
    }

    /// Runs `requests` a few at a time, answers in order.
    async fn all<F: Future<Output = Answer>>(&self, requests: impl IntoIterator<Item = F>) -> Vec<Answer> {
        stream::iter(requests).buffered(CONCURRENCY).collect().await
    }

    /// Every answer this client got: no 5xx (no test here takes a service down, so a 5xx is
    /// a bug or bad input that reached AWS), errors as problem+json with the request's
    /// correlation id, and nothing of our insides in a body or a header.
    async fn assert_clean(&self, api: &LocalApi) {
        let jwt_key = Forger::of(api).await.private_text;
        let stack_name = api.stack["stack_name"].as_str().unwrap().to_owned();
        let seen = self.seen.lock().unwrap();
        assert!(!seen.is_empty());
        let mut wrong = Vec::new();
        for answer in seen.iter() {
            let status = answer.status;
            if status.is_server_error() {
                wrong.push(format!("{}: {status} {}", answer.what, answer.body));
            }
            // API Gateway's own answer is not ours to shape (it is checked where it is expected).
            if (status.is_client_error() || status.is_server_error()) && !answer.is_gateways_forbidden() {
                let problem = answer.json();
                let correlation_id = answer.headers.get("x-correlation-id").and_then(|v| v.to_str().ok());
                let well_formed = answer.content_type() == "application/problem+json"
                    && problem["status"] == status.as_u16()
                    && ["type", "title", "detail"].iter().all(|m| problem[m].is_string())
                    && correlation_id.is_some()
                    && problem["correlation_id"].as_str() == correlation_id;
                if !well_formed {
                    wrong.push(format!(
                        "{}: {status} is not a problem+json with its correlation id: {}",
                        answer.what, answer.body
                    ));
                }
            }
            let headers: Vec<String> =
                answer.headers.values().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
            for text in std::iter::once(&answer.body).chain(&headers) {
                if let Some(leak) = leak(text, &[&jwt_key, &stack_name, PASSWORD]) {
                    wrong.push(format!("{}: {status} shows {leak:?}: {}", answer.what, cut(text)));
                }
            }
        }
        assert!(wrong.is_empty(), "{} of {} answers are wrong:\n{}", wrong.len(), seen.len(), wrong.join("\n"));
    }
}

/// What no answer may contain: panics and stack traces, source paths, Debug-printed errors,
/// AWS error names, ARNs and endpoints, signatures, password hashes.
const INSIDES: &[&str] = &[
    "panicked",
    "backtrace",
    "rust_backtrace",
    "thread '",
    "unwrap()",
    "src/",
    ".rs:",
    "error {",
    "error(",
    "sdkerror",
    "serviceerror",
    "dispatch failure",
    "dynamodb",
    "conditionalcheckfailed",
    "transactioncanceled",
    "validationexception",
    "resourcenotfound",
    "throttlingexception",
    "arn:aws",
    "amazonaws.com",
    ":4566",
    "x-amz-",
    "credential=",
    "signature=",
    "$argon2",
    "password_hash",
];

/// The first thing in `text` an answer must not show; `secrets` match case-sensitively.
fn leak(text: &str, secrets: &[&str]) -> Option<String> {
    let lower = text.to_lowercase();
    INSIDES
        .iter()
        .find(|needle| lower.contains(*needle))
        .map(|needle| needle.to_string())
        .or_else(|| secrets.iter().find(|s| !s.is_empty() && text.contains(*s)).map(|_| "a secret".to_owned()))
}

fn cut(text: &str) -> String {
    text.chars().take(300).collect()
}

/// Who signs a SigV4 request, and when.
struct Signer {
    credentials: aws_credential_types::Credentials,
    time: SystemTime,
}

impl Signer {
    /// The local credentials devstack accepts (those the functions sign with).
    fn local() -> Self {
        Self::with("test", "test", SystemTime::now())
    }

    fn with(access_key: &str, secret_key: &str, time: SystemTime) -> Self {
        let credentials = aws_credential_types::Credentials::new(access_key, secret_key, None, None, "security");
        Self { credentials, time }
    }
}

// ---------------------------------------------------------------- forged tokens

/// Every way a bearer token can be wrong, signed with the stack's real key where a case needs it.
trait Forgeries {
    fn forgeries(&self, user: &User, real: &str) -> Vec<(&'static str, Option<String>)>;
}

impl Forgeries for Forger {
    /// Every way a bearer token can be wrong, each as an `Authorization` header (None: no
    /// header). `real` is a genuine token of `user`, for the forgeries made from one.
    fn forgeries(&self, user: &User, real: &str) -> Vec<(&'static str, Option<String>)> {
        let bearer = |token: String| Some(format!("Bearer {token}"));
        let claims = |changes: Value| self.claims(&user.id, changes);
        let [header, payload, signature] = real.split('.').collect::<Vec<_>>()[..] else { panic!("a JWT") };
        let encode = |value: &Value| B64.encode(value.to_string());
        let none_header = encode(&json!({"alg": "none", "typ": "JWT"}));
        let mut real_claims: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
        real_claims["role"] = json!("seller");
        let raised = encode(&real_claims);
        real_claims["role"] = json!("customer");
        real_claims["sub"] = json!("usr_someone_else");
        let swapped = encode(&real_claims);
        let (foreign, foreign_kid) = foreign_key();
        let foreign_header = json!({"alg": "EdDSA", "typ": "JWT", "kid": foreign_kid});
        let hs256 = json!({"alg": "HS256", "typ": "JWT", "kid": self.kid});
        vec![
            ("no Authorization header", None),
            ("an empty Authorization header", Some(String::new())),
            ("the scheme alone", Some("Bearer".into())),
            ("a real token with the Basic scheme", Some(format!("Basic {real}"))),
            ("a real token without a scheme", Some(real.to_owned())),
            ("not a JWT", bearer("not-a-token".into())),
            ("three garbage segments", bearer("a.b.c".into())),
            ("a huge header", bearer("x".repeat(6000))),
            ("signed with another key", bearer(forge(&self.header(), &claims(json!({})), Algorithm::EdDSA, &foreign))),
            (
                "a key this API does not publish",
                bearer(forge(&foreign_header, &claims(json!({})), Algorithm::EdDSA, &foreign)),
            ),
            (
                "no kid",
                bearer(forge(
                    &json!({"alg": "EdDSA", "typ": "JWT"}),
                    &claims(json!({})),
                    Algorithm::EdDSA,
                    &self.private_key,
                )),
            ),
            ("alg none, unsigned", bearer(format!("{none_header}.{}.", encode(&claims(json!({})))))),
            ("alg none with the real signature", bearer(format!("{none_header}.{payload}.{signature}"))),
            (
                "HS256 keyed with the public key",
                bearer(forge(&hs256, &claims(json!({})), Algorithm::HS256, &self.public_key)),
            ),
            (
                "HS256 keyed with the private key",
                bearer(forge(&hs256, &claims(json!({})), Algorithm::HS256, &self.private_key)),
            ),
            (
                "an RS256 header on the real signature",
                bearer(format!(
                    "{}.{payload}.{signature}",
                    encode(&json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}))
                )),
            ),
            ("expired", bearer(self.sign(&claims(json!({"iat": 1_600_000_000, "exp": 1_600_000_600}))))),
            ("not valid yet", bearer(self.sign(&claims(json!({"nbf": chrono::Utc::now().timestamp() + 3600}))))),
            ("another issuer", bearer(self.sign(&claims(json!({"iss": "https://evil.example"}))))),
            ("another audience", bearer(self.sign(&claims(json!({"aud": "another-api"}))))),
            ("no expiry", bearer(self.sign(&claims(json!({"exp": null}))))),
            ("no subject", bearer(self.sign(&claims(json!({"sub": null}))))),
            ("no jti", bearer(self.sign(&claims(json!({"jti": null}))))),
            ("a role that does not exist", bearer(self.sign(&claims(json!({"role": "superuser"}))))),
            ("a real token with its role raised", bearer(format!("{header}.{raised}.{signature}"))),
            ("a real token with another subject", bearer(format!("{header}.{swapped}.{signature}"))),
            ("a real token without its signature", bearer(format!("{header}.{payload}."))),
        ]
    }
}

/// A seller with a product, a customer with an order (and its payment): real ids for every
/// path parameter, so a request that got past a guard would act on real data.
struct World {
    seller: User,
    customer: User,
    product_id: String,
    order: Value,
}

impl World {
    async fn make(client: &Client) -> Self {
        let seller = client.register("seller").await;
        let product_id = client.product(&seller, 1299, 5).await;
        let customer = client.register("customer").await;
        client.put_in_cart(&customer, &product_id, 1).await;
        let order = client.checkout(&customer, "world", json!({"payment_token": "tok_visa"})).await;
        Self { seller, customer, product_id, order }
    }

    fn ids(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("product_id", self.product_id.clone()),
            ("order_id", self.order["order_id"].as_str().unwrap().to_owned()),
            ("payment_id", self.order["payment_id"].as_str().unwrap().to_owned()),
            ("user_id", self.customer.id.clone()),
            ("seller_id", self.seller.id.clone()),
        ])
    }

    fn path(&self, route: &Route) -> String {
        let ids = self.ids();
        route.path_with(|name| ids.get(name).cloned().unwrap_or_else(|| "x".into()))
    }

    /// The route's sample body with the real ids, but the sample's order id: an order that
    /// got made anyway would be a new one in the customer's list.
    fn body(&self, route: &Route) -> Option<Value> {
        let mut ids = self.ids();
        ids.remove("order_id");
        route.sample_body().map(|body| with_ids(&body, &ids))
    }

    /// What the forged requests must not have changed.
    async fn state(&self, client: &Client) -> Value {
        let order_id = self.order["order_id"].as_str().unwrap();
        let payment_id = self.order["payment_id"].as_str().unwrap();
        let product = client.call(None, Method::GET, &format!("/products/{}", self.product_id), None).await;
        let order = client.get(&self.customer, &format!("/orders/{order_id}")).await.json();
        let orders = client.get(&self.customer, "/orders").await.json();
        let payment = client.get(&self.customer, &format!("/payments/{payment_id}")).await.json();
        let products = client.call(None, Method::GET, "/products?limit=100", None).await.json();
        json!({
            "product": product.json(),
            "cart": client.get(&self.customer, "/cart").await.json(),
            // Settlement runs in the background: only whether it was cancelled or voided counts.
            "order": [order["order_id"].clone(), json!(order["status"] == "cancelled")],
            "orders": orders["items"].as_array().map(Vec::len),
            "payment": [payment["amount_cents"].clone(), json!(payment["status"] == "voided")],
            "products": products["items"].as_array().map(Vec::len),
        })
    }
}
