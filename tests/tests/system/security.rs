//! Hardening (issue 9): what an attacker can try through the HTTP API, against a local stack,
//! and a static check of every IAM grant in template.yaml.
//!
//! Routes and their guards come from template.yaml (`HttpApi` events and their authorizer),
//! request bodies from the samples in `events/`, so a new route is covered without a change
//! here. Every answer each test gets goes through [`Client::assert_clean`]: no 5xx, every
//! error a problem+json with the request's correlation id, and nothing that tells an attacker
//! about our insides (stack traces, AWS errors, ARNs, the signing key, resource names).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use futures_util::{StreamExt, stream};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use system_tests::LocalApi;

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
}

impl Client {
    fn new(api: &LocalApi) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { url: api.url.clone(), http, seen: Mutex::new(Vec::new()) }
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
        User {
            id: session["user"]["user_id"].as_str().unwrap().to_owned(),
            token: session["access_token"].as_str().unwrap().to_owned(),
        }
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
        let jwt_key = signing_key(api).await;
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

/// The key that signs the stack's access tokens, as only the Auth functions read it.
async fn signing_key(api: &LocalApi) -> String {
    let secrets = aws_sdk_secretsmanager::Client::new(&system_tests::emulator().await);
    let secret = secrets.get_secret_value().secret_id(api.reference("JwtSigningSecret")).send().await.unwrap();
    secret.secret_string().expect("a string secret").to_owned()
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

/// Signs tokens with the stack's real key, wrong in exactly the way a case asks.
struct Forger {
    key: Vec<u8>,
    issuer: String,
    audience: String,
}

impl Forger {
    async fn of(api: &LocalApi) -> Self {
        let parameter = |name: &str| api.stack["parameters"][name].as_str().unwrap().to_owned();
        Self {
            key: signing_key(api).await.into_bytes(),
            issuer: parameter("JwtIssuer"),
            audience: parameter("JwtAudience"),
        }
    }

    /// Valid claims for `sub`, with `changes` applied (`null` removes a claim).
    fn claims(&self, sub: &str, changes: Value) -> Value {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({"sub": sub, "role": "customer", "iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + 600});
        let fields = claims.as_object_mut().unwrap();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                fields.remove(name);
            } else {
                fields.insert(name.clone(), value.clone());
            }
        }
        claims
    }

    fn sign(&self, algorithm: Algorithm, claims: &Value) -> String {
        self.sign_with(algorithm, claims, &self.key)
    }

    fn sign_with(&self, algorithm: Algorithm, claims: &Value, key: &[u8]) -> String {
        jsonwebtoken::encode(&Header::new(algorithm), claims, &EncodingKey::from_secret(key)).unwrap()
    }

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
        vec![
            ("no Authorization header", None),
            ("an empty Authorization header", Some(String::new())),
            ("the scheme alone", Some("Bearer".into())),
            ("a real token with the Basic scheme", Some(format!("Basic {real}"))),
            ("a real token without a scheme", Some(real.to_owned())),
            ("not a JWT", bearer("not-a-token".into())),
            ("three garbage segments", bearer("a.b.c".into())),
            ("a huge header", bearer("x".repeat(6000))),
            ("signed with another key", bearer(self.sign_with(Algorithm::HS256, &claims(json!({})), &[7u8; 64]))),
            ("alg none, unsigned", bearer(format!("{none_header}.{}.", encode(&claims(json!({})))))),
            ("alg none with the real signature", bearer(format!("{none_header}.{payload}.{signature}"))),
            ("HS512 with the real key", bearer(self.sign(Algorithm::HS512, &claims(json!({}))))),
            (
                "an RS256 header on an HS256 signature",
                bearer(format!("{}.{payload}.{signature}", encode(&json!({"alg": "RS256", "typ": "JWT"})))),
            ),
            (
                "expired",
                bearer(self.sign(Algorithm::HS256, &claims(json!({"iat": 1_600_000_000, "exp": 1_600_000_600})))),
            ),
            (
                "not valid yet",
                bearer(self.sign(Algorithm::HS256, &claims(json!({"nbf": chrono::Utc::now().timestamp() + 3600})))),
            ),
            ("another issuer", bearer(self.sign(Algorithm::HS256, &claims(json!({"iss": "https://evil.example"}))))),
            ("another audience", bearer(self.sign(Algorithm::HS256, &claims(json!({"aud": "another-api"}))))),
            ("no expiry", bearer(self.sign(Algorithm::HS256, &claims(json!({"exp": null}))))),
            ("no subject", bearer(self.sign(Algorithm::HS256, &claims(json!({"sub": null}))))),
            ("a role that does not exist", bearer(self.sign(Algorithm::HS256, &claims(json!({"role": "admin"}))))),
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

// ---------------------------------------------------------------- static: routes and IAM

#[test]
fn internal_routes_are_iam_only_and_every_guard_is_the_documented_one() {
    let document: Value = serde_norway::from_str(
        &std::fs::read_to_string(devstack::repo_root().join("infra/openapi.yaml")).expect("infra/openapi.yaml"),
    )
    .expect("OpenAPI parses");
    let schemes = &document["components"]["securitySchemes"];
    for route in routes() {
        assert_eq!(
            route.path.starts_with("/internal/"),
            route.guard == Guard::Iam,
            "{}: /internal/ routes, and only they, take SigV4 (AWS_IAM)",
            route.key()
        );
        let operation = &document["paths"][&route.path][route.method.as_str().to_lowercase()];
        assert!(operation.is_object(), "{} is not in infra/openapi.yaml", route.key());
        let security = operation.get("security").or(document.get("security")).cloned().unwrap_or(json!([]));
        let documented: BTreeSet<&str> = security
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|requirement| requirement.as_object().unwrap().keys())
            .map(|name| match (&schemes[name]["type"], &schemes[name]["scheme"], &schemes[name]["name"]) {
                (t, s, _) if t == "http" && s == "bearer" => "token",
                (t, _, n) if t == "apiKey" && n == "Authorization" => "sigv4",
                _ => panic!("{}: unknown security scheme {name}", route.key()),
            })
            .collect();
        let deployed = match route.guard {
            Guard::Public => BTreeSet::new(),
            Guard::Token(_) => BTreeSet::from(["token"]),
            Guard::Iam => BTreeSet::from(["sigv4"]),
        };
        assert_eq!(
            deployed,
            documented,
            "{}: template.yaml and the OpenAPI document disagree on its guard",
            route.key()
        );
    }
}

/// A grant broader than one action on named resources: a wildcard action, `*` as the
/// resource, `NotAction`/`NotResource`, `Principal: *`, or an AWS managed policy (whose
/// statements are not in the template; SAM attaches some by itself).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    owner: String,
    source: String,
    what: String,
}

/// A broad grant we accept, and why. `owner` "*" = any function.
struct Allowed {
    owner: &'static str,
    source: &'static str,
    what: &'static str,
    reason: &'static str,
}

const ALLOWED: &[Allowed] = &[
    Allowed {
        owner: "*",
        source: "managed AWSLambdaBasicExecutionRole",
        what: "managed policy",
        reason: "SAM attaches it to every function role it generates (logs:CreateLogGroup, CreateLogStream, \
                 PutLogEvents on *); only hand-written roles, one per function, would avoid it",
    },
    Allowed {
        owner: "*",
        source: "managed AWSXrayWriteOnlyAccess",
        what: "managed policy",
        reason: "Tracing: Active; xray:PutTraceSegments, PutTelemetryRecords and GetSampling* have no \
                 resource-level permissions (Service Authorization Reference), so * is their only form",
    },
    Allowed {
        owner: "*",
        source: "managed AWSLambdaSQSQueueExecutionRole",
        what: "managed policy",
        reason: "SAM attaches it for every SQS event source (Lambda's poller reads with the function's role); \
                 only hand-written roles would scope it to the one queue",
    },
    Allowed {
        owner: "NotifyFunction",
        source: "inline",
        what: "sns:Publish on *",
        reason: "SMS (NotificationSender=sns-sms) publishes to phone numbers, which have no ARN: IAM only \
                 accepts * for them; a Deny beside it takes every SNS ARN (topics, endpoints) away, so * is \
                 phone numbers only (tests/tests/system/iam.rs shows a topic refused)",
    },
    Allowed {
        owner: "AlertsKey",
        source: "KeyPolicy",
        what: "action kms:*",
        reason: "the default key policy statement: the account (root) administers its key and delegates use to \
                 IAM; without it the key cannot be managed",
    },
    Allowed {
        owner: "AlertsKey",
        source: "KeyPolicy",
        what: "kms:* on *",
        reason: "in a key policy, Resource * means this key (the documented form)",
    },
    Allowed {
        owner: "AlertsKey",
        source: "KeyPolicy",
        what: "action kms:GenerateDataKey*",
        reason: "what AWS documents for CloudWatch alarms publishing to an SSE-KMS encrypted topic",
    },
    Allowed {
        owner: "AlertsKey",
        source: "KeyPolicy",
        what: "kms:Decrypt on *",
        reason: "in a key policy, Resource * means this key (the documented form)",
    },
    Allowed {
        owner: "AlertsKey",
        source: "KeyPolicy",
        what: "kms:GenerateDataKey* on *",
        reason: "in a key policy, Resource * means this key (the documented form)",
    },
];

/// The statements of the SAM policy templates we use, as aws-sam-translator's
/// `policy_templates.json` defines them: (actions, whether the resource is `*`). A template
/// not listed here fails the test until its definition is read and added.
fn sam_policy_template(name: &str) -> Vec<(Vec<&'static str>, bool)> {
    match name {
        "SNSPublishMessagePolicy" => vec![(vec!["sns:Publish"], false)],
        "AWSSecretsManagerGetSecretValuePolicy" => vec![(vec!["secretsmanager:GetSecretValue"], false)],
        "SSMParameterReadPolicy" => vec![
            (vec!["ssm:DescribeParameters"], true),
            (vec!["ssm:GetParameters", "ssm:GetParameter", "ssm:GetParametersByPath"], false),
        ],
        other => panic!("SAM policy template {other}: read its definition and add it to sam_policy_template"),
    }
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// A resource as written: a string, or the text of a `!Sub`.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        _ => match &value["Fn::Sub"] {
            Value::String(s) => Some(s.clone()),
            Value::Array(parts) => parts.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        },
    }
}

/// The broad grants of one policy statement (Deny statements only take away).
fn broad(owner: &str, source: &str, statement: &Value, found: &mut BTreeSet<Grant>) {
    if statement["Effect"] != "Allow" {
        return;
    }
    let mut grant = |what: String| {
        found.insert(Grant { owner: owner.into(), source: source.into(), what });
    };
    let actions: Vec<String> = as_list(&statement["Action"]).iter().filter_map(text).collect();
    for action in &actions {
        if action.contains('*') {
            grant(format!("action {action}"));
        }
    }
    for negated in ["NotAction", "NotResource"] {
        if statement.get(negated).is_some() {
            grant(negated.to_owned());
        }
    }
    if as_list(&statement["Resource"]).iter().any(|r| text(r).as_deref() == Some("*")) {
        for action in &actions {
            grant(format!("{action} on *"));
        }
    }
    let principal = &statement["Principal"];
    let anyone = principal == "*" || as_list(&principal["AWS"]).iter().any(|p| p == "*");
    if anyone && statement.get("Condition").is_none() {
        grant("Principal * without a condition".into());
    }
}

fn broad_in_document(owner: &str, source: &str, document: &Value, found: &mut BTreeSet<Grant>) -> usize {
    let statements = as_list(&document["Statement"]);
    for statement in &statements {
        broad(owner, source, statement, found);
    }
    statements.len()
}

/// The AWS managed policies SAM attaches to a function's generated role by itself, as
/// aws-sam-translator does: the basic execution role always, X-Ray's for `Tracing: Active`,
/// the VPC one for `VpcConfig`, and one per polled event source.
fn sam_managed_policies(properties: &Value, tracing_default: &Value) -> Vec<String> {
    let mut policies = vec!["AWSLambdaBasicExecutionRole"];
    if properties.get("Tracing").unwrap_or(tracing_default) == "Active" {
        policies.push("AWSXrayWriteOnlyAccess");
    }
    if properties.get("VpcConfig").is_some() {
        policies.push("AWSLambdaVPCAccessExecutionRole");
    }
    for event in properties["Events"].as_object().into_iter().flatten().map(|(_, e)| e) {
        policies.extend(match event["Type"].as_str() {
            Some("SQS") => Some("AWSLambdaSQSQueueExecutionRole"),
            Some("Kinesis") => Some("AWSLambdaKinesisExecutionRole"),
            Some("DynamoDB") => Some("AWSLambdaDynamoDBExecutionRole"),
            Some("MSK") => Some("AWSLambdaMSKExecutionRole"),
            _ => None,
        });
    }
    policies.into_iter().map(|name| format!("managed {name}")).collect()
}

/// The managed policy name of an ARN or a name.
fn managed(name: &Value) -> String {
    let name = text(name).unwrap_or_else(|| panic!("a managed policy named by an intrinsic: {name}"));
    format!("managed {}", name.rsplit('/').next().unwrap())
}

#[test]
fn iam_grants_nothing_broad_beyond_the_allow_list() {
    let template = system_tests::template();
    let tracing_default = template.globals.get("Function").map(|f| f["Tracing"].clone()).unwrap_or_default();
    let mut found = BTreeSet::new();
    // Kinds that carry no policy; a new kind must be classified here before the test passes.
    let policy_free = [
        "AWS::Serverless::HttpApi",
        "AWS::Logs::LogGroup",
        "AWS::SSM::Parameter",
        "AWS::SecretsManager::Secret",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
    ];
    for (id, resource) in &template.resources {
        let properties = &resource.properties;
        match resource.kind.as_str() {
            "AWS::Serverless::Function" => {
                if let Some(role) = properties.get("Role") {
                    let local = role["Fn::GetAtt"][0].as_str().or(role["Ref"].as_str());
                    let kind = local.and_then(|r| template.resources.get(r)).map(|r| r.kind.as_str());
                    assert_eq!(kind, Some("AWS::IAM::Role"), "{id}: a role this test cannot see");
                    continue;
                }
                for policy in sam_managed_policies(properties, &tracing_default) {
                    found.insert(Grant { owner: id.clone(), source: policy, what: "managed policy".into() });
                }
                let mut statements = 0;
                for policy in as_list(&properties["Policies"]) {
                    if policy.is_string() {
                        found.insert(Grant {
                            owner: id.clone(),
                            source: managed(&policy),
                            what: "managed policy".into(),
                        });
                        statements += 1;
                    } else if policy.get("Statement").is_some() {
                        statements += broad_in_document(id, "inline", &policy, &mut found);
                    } else {
                        let (name, _) =
                            policy.as_object().and_then(|o| o.iter().next()).expect("a SAM policy template");
                        for (actions, everything) in sam_policy_template(name) {
                            // The template's statement, its scoped resource stood in for.
                            let resource = if everything { "*" } else { "arn:scoped" };
                            let statement = json!({"Effect": "Allow", "Action": actions, "Resource": resource});
                            broad(id, name, &statement, &mut found);
                            statements += 1;
                        }
                    }
                }
                assert!(statements > 0 || properties.get("Policies").is_none(), "{id}: Policies not understood");
            }
            "AWS::IAM::Role" => {
                for policy in as_list(&properties["Policies"]) {
                    broad_in_document(id, "inline", &policy["PolicyDocument"], &mut found);
                }
                for arn in as_list(&properties["ManagedPolicyArns"]) {
                    found.insert(Grant { owner: id.clone(), source: managed(&arn), what: "managed policy".into() });
                }
            }
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::SQS::QueuePolicy" | "AWS::SNS::TopicPolicy" => {
                let source = resource.kind.rsplit("::").next().unwrap();
                assert!(
                    broad_in_document(id, source, &properties["PolicyDocument"], &mut found) > 0,
                    "{id}: no statements"
                );
            }
            "AWS::KMS::Key" => {
                assert!(
                    broad_in_document(id, "KeyPolicy", &properties["KeyPolicy"], &mut found) > 0,
                    "{id}: no key policy"
                );
            }
            kind => assert!(policy_free.contains(&kind), "{id}: {kind} may carry a policy: teach this test to read it"),
        }
    }

    let allowed = |grant: &Grant| {
        ALLOWED.iter().any(|a| {
            let owner = a.owner == grant.owner
                || (a.owner == "*" && template.resources[&grant.owner].kind == "AWS::Serverless::Function");
            owner && a.source == grant.source && a.what == grant.what
        })
    };
    let refused: Vec<String> =
        found.iter().filter(|g| !allowed(g)).map(|g| format!("{}: {} grants {}", g.owner, g.source, g.what)).collect();
    assert!(
        refused.is_empty(),
        "broad IAM grants; scope them or allow-list them with a reason:\n{}",
        refused.join("\n")
    );
    let stale: Vec<&str> = ALLOWED
        .iter()
        .filter(|a| {
            !found.iter().any(|g| (a.owner == "*" || a.owner == g.owner) && a.source == g.source && a.what == g.what)
        })
        .map(|a| a.reason)
        .collect();
    assert!(stale.is_empty(), "allow-list entries nothing needs any more (remove them): {stale:#?}");
}

// ---------------------------------------------------------------- tokens and signatures

#[tokio::test]
async fn every_token_route_answers_every_forged_token_with_401() {
    let api = LocalApi::start().await;
    let client = Client::new(&api);
    let world = World::make(&client).await;
    let forger = Forger::of(&api).await;
    let token_routes: Vec<Route> = routes().into_iter().filter(|r| matches!(r.guard, Guard::Token(_))).collect();
    assert!(token_routes.len() >= 15, "docs/api.md's (auth) routes: {}", token_routes.len());
    let forgeries = forger.forgeries(&world.customer, &world.customer.token);
    let before = world.state(&client).await;

    let mut cases = Vec::new();
    for route in &token_routes {
        for (n, (case, header)) in forgeries.iter().enumerate() {
            cases.push((route, *case, header.clone(), format!("forged-{n}")));
        }
    }
    let answers = client
        .all(cases.iter().map(|(route, case, header, correlation_id)| {
            let mut request = client
                .request(route.method.clone(), &world.path(route))
                .header("x-correlation-id", correlation_id.as_str());
            if let Some(header) = header {
                request = request.header("authorization", header.as_str());
            }
            if let Some(body) = world.body(route) {
                request = request.json(&body);
            }
            client.send(format!("{} with {case}", route.key()), request)
        }))
        .await;
    for (answer, (_, _, _, correlation_id)) in answers.iter().zip(&cases) {
        let problem = answer.expect_problem(StatusCode::UNAUTHORIZED);
        assert_eq!(problem["correlation_id"], correlation_id.as_str(), "{}", answer.what);
        assert_eq!(answer.headers["x-correlation-id"], correlation_id.as_str(), "{}", answer.what);
    }
    assert_eq!(world.state(&client).await, before, "a forged token changed something");

    // A genuine token for an account that does not exist (the key is the only way to make
    // one): never a 5xx (assert_clean), and /auth/me refuses it.
    let ghost = forger.sign(Algorithm::HS256, &forger.claims("usr_01ZZZZZZZZZZZZZZZZZZZZZZZZ", json!({})));
    let ghost = User { id: "usr_01ZZZZZZZZZZZZZZZZZZZZZZZZ".into(), token: ghost };
    let answers = client
        .all(
            token_routes
                .iter()
                .map(|route| client.call(Some(&ghost), route.method.clone(), world.path(route), world.body(route))),
        )
        .await;
    let me = answers.iter().find(|a| a.what == "GET /auth/me").expect("GET /auth/me is a token route");
    me.expect_problem(StatusCode::UNAUTHORIZED);

    // The control: the customer's own token opens every route (403 on seller routes), so
    // the 401s above were the guard's doing.
    for route in &token_routes {
        let answer =
            client.call(Some(&world.customer), route.method.clone(), &world.path(route), world.body(route)).await;
        assert!(
            answer.status != StatusCode::UNAUTHORIZED && !answer.status.is_server_error(),
            "{}: {}",
            answer.what,
            answer.body
        );
    }
    client.assert_clean(&api).await;
}

/// What matches no route reaches the `$default` route's function, which knows the template's
/// routes: a path with routes answers another method (TRACE, OPTIONS, ...) 405 with exactly
/// their methods in `Allow`; any other path is 404. Both are problem+json, like every error.
#[tokio::test]
async fn unmatched_requests_are_405_with_allow_on_known_paths_and_404_elsewhere() {
    let api = LocalApi::start().await;
    let client = Client::new(&api);
    let mut methods: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for route in routes() {
        methods.entry(route.path.clone()).or_default().insert(route.method.to_string());
    }
    let sample =
        |path: &str| path.split('/').map(|s| if s.starts_with('{') { "x1" } else { s }).collect::<Vec<_>>().join("/");
    let mut requests = Vec::new();
    for (path, allowed) in &methods {
        let concrete = sample(path);
        // Not HEAD: its answer has no body to hold a problem.
        for method in ["TRACE", "OPTIONS", "GET", "PUT", "DELETE", "PATCH", "POST"] {
            if !allowed.contains(method) {
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                requests.push(client.call(None, method, concrete.clone(), None));
            }
        }
    }
    let answers = client.all(requests).await;
    assert!(answers.len() > methods.len());
    for answer in &answers {
        let (method, path) = answer.what.split_once(' ').unwrap();
        let route = methods.keys().find(|p| sample(p) == path).unwrap();
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{}: {}", answer.what, answer.body);
        let allow = answer.headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let listed: BTreeSet<String> = allow.split(',').map(|m| m.trim().to_owned()).collect();
        assert_eq!(&listed, &methods[route], "{method} {path}: Allow {allow:?}");
    }
    for path in ["/", "/nothing", "/products/x1/nothing", "/internal", "/health/x1"] {
        for method in [Method::GET, Method::TRACE, Method::POST] {
            client.call(None, method, path, None).await.expect_problem(StatusCode::NOT_FOUND);
        }
    }
    client.assert_clean(&api).await;
}

#[tokio::test]
async fn internal_routes_refuse_user_tokens_and_anything_but_a_valid_signature() {
    let api = LocalApi::start().await;
    let client = Client::new(&api);
    let world = World::make(&client).await;
    let internal: Vec<Route> = routes().into_iter().filter(|r| r.guard == Guard::Iam).collect();
    assert!(internal.len() >= 5, "docs/api.md's internal routes: {}", internal.len());
    let before = world.state(&client).await;

    let twenty_minutes_ago = SystemTime::now() - Duration::from_secs(20 * 60);
    let mut requests = Vec::new();
    for route in &internal {
        let path = world.path(route);
        let body = world.body(route).map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let plain = |token: Option<&User>| {
            let mut request = client.request(route.method.clone(), &path).body(body.clone());
            if let Some(user) = token {
                request = request.bearer_auth(&user.token);
            }
            request
        };
        let signed = |signer: Signer| client.signed(route.method.clone(), &path, body.clone(), &signer);
        let mut cases = vec![
            ("no signature", plain(None)),
            ("a customer's token", plain(Some(&world.customer))),
            ("a seller's token", plain(Some(&world.seller))),
            (
                "a signature made with another secret key",
                signed(Signer::with("test", "not-the-secret", SystemTime::now())),
            ),
            (
                "a signature of an unknown access key",
                signed(Signer::with("AKIAIOSFODNN7EXAMPLE", "test", SystemTime::now())),
            ),
            ("a signature 20 minutes old", signed(Signer::with("test", "test", twenty_minutes_ago))),
        ];
        // A valid signature of another request: the same headers on a changed body, and on
        // the route's URL with a query added.
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        let headers = shared::sigv4::signing_headers(
            route.method.as_str(),
            &format!("{}{path}", client.url),
            &[],
            &body,
            &Signer::local().credentials,
            "us-east-1",
            SystemTime::now(),
        )
        .unwrap();
        let with_headers = |request: reqwest::RequestBuilder| {
            headers.iter().fold(request, |request, (name, value)| request.header(name.as_str(), value.as_str()))
        };
        cases.push((
            "a valid signature over another body",
            with_headers(client.request(route.method.clone(), &path).body(tampered)),
        ));
        cases.push((
            "a valid signature of another URL of the route",
            with_headers(client.request(route.method.clone(), &format!("{path}?replayed=1")).body(body.clone())),
        ));
        for (case, request) in cases {
            requests.push(client.send(format!("{} with {case}", route.key()), request));
        }
    }
    for answer in client.all(requests).await {
        assert!(answer.is_gateways_forbidden(), "{}: {} {}", answer.what, answer.status, answer.body);
    }
    assert_eq!(world.state(&client).await, before, "a refused internal call changed something");

    // The control: the functions' own signature opens each of them (sample ids: nothing real).
    for route in &internal {
        let sample_path = route.path_with(|name| {
            route.sample.as_ref().and_then(|s| s["pathParameters"][name].as_str()).unwrap_or("x").to_owned()
        });
        let body = route.sample_body().map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let answer =
            client.send(route.key(), client.signed(route.method.clone(), &sample_path, body, &Signer::local())).await;
        assert_ne!(answer.status, StatusCode::FORBIDDEN, "{}: {}", answer.what, answer.body);
    }
    client.assert_clean(&api).await;
}

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

// ---------------------------------------------------------------- sizes and throttling

#[tokio::test]
async fn bodies_over_64_kib_are_413_on_every_route() {
    let api = LocalApi::start().await;
    let client = Client::new(&api);
    let world = World::make(&client).await;
    // Routes that read a body and routes that ignore theirs alike.
    let with_body: Vec<Route> = routes();
    assert!(with_body.iter().filter(|r| r.sample_body().is_some()).count() >= 10);

    let request = |route: &Route, size: usize| {
        // The sample (or `{}`), padded with whitespace: valid JSON of exactly `size` bytes.
        let mut body = world.body(route).map_or_else(|| "{}".to_owned(), |b| b.to_string()).into_bytes();
        assert!(body.len() < size);
        body.resize(size, b' ');
        let path = world.path(route);
        let request = match route.guard {
            Guard::Iam => client.signed(route.method.clone(), &path, body, &Signer::local()),
            // A seller passes every role check, so the body is what is judged.
            Guard::Token(_) => client.request(route.method.clone(), &path).bearer_auth(&world.seller.token).body(body),
            Guard::Public => client.request(route.method.clone(), &path).body(body),
        };
        client.send(format!("{} with {size} bytes", route.key()), request.header("content-type", "application/json"))
    };
    let too_big = with_body.iter().flat_map(|route| [request(route, MAX_BODY + 1), request(route, 1024 * 1024)]);
    for answer in client.all(too_big).await {
        answer.expect_problem(StatusCode::PAYLOAD_TOO_LARGE);
    }
    // The limit itself is allowed: whatever the answer, it is not about the size.
    for answer in client.all(with_body.iter().map(|route| request(route, MAX_BODY))).await {
        assert_ne!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{}: {}", answer.what, answer.body);
    }
    client.assert_clean(&api).await;
}

#[tokio::test]
async fn login_throttling_counts_every_spelling_of_an_email_and_unknown_emails_and_parallel_guesses() {
    let api = LocalApi::start().await;
    let client = Client::new(&api);
    let login = |email: String, password: &str| {
        client.call(None, Method::POST, "/auth/login", Some(json!({"email": email, "password": password})))
    };
    let fresh = |name: &str| format!("{name}.{}@example.com", ulid::Ulid::generate().to_string().to_lowercase());
    let sign_up = |email: String| {
        let body = json!({"email": email, "password": PASSWORD, "name": "T"});
        client.call(None, Method::POST, "/auth/register", Some(body))
    };
    let locked = |answer: &Answer| {
        answer.expect_problem(StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = answer.headers["retry-after"].to_str().unwrap().parse().expect("delta-seconds");
        assert!((1..=900).contains(&retry_after), "{}: Retry-After {retry_after}", answer.what);
    };

    // Five failures spelled five ways lock the one address, even for the right password.
    let ann = fresh("ann");
    sign_up(ann.clone()).await.expect(StatusCode::CREATED);
    let spellings =
        [ann.to_uppercase(), format!(" {ann} "), ann.replacen('a', "A", 1), ann.clone(), ann.to_uppercase()];
    for spelling in spellings {
        login(spelling, "wrong horse").await.expect_problem(StatusCode::UNAUTHORIZED);
    }
    locked(&login(ann.clone(), PASSWORD).await);

    // An address nobody registered locks the same way: the lock does not tell which exist.
    let ghost = fresh("ghost");
    for _ in 0..5 {
        login(ghost.clone(), "wrong horse").await.expect_problem(StatusCode::UNAUTHORIZED);
    }
    locked(&login(ghost, "wrong horse").await);

    // Guesses in parallel are counted too: at most five are even tried.
    let bob = fresh("bob");
    sign_up(bob.clone()).await.expect(StatusCode::CREATED);
    let guesses = client.all((0..12).map(|_| login(bob.clone(), "wrong horse"))).await;
    let tried = guesses.iter().filter(|a| a.status != StatusCode::TOO_MANY_REQUESTS).count();
    assert!(
        tried <= 5,
        "{tried} of 12 parallel logins were tried: {:?}",
        guesses.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for guess in guesses.iter().filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS) {
        locked(guess);
    }
    locked(&login(bob, PASSWORD).await);

    // Meanwhile everyone else logs in as usual.
    let carl = fresh("carl");
    sign_up(carl.clone()).await.expect(StatusCode::CREATED);
    login(carl, PASSWORD).await.expect(StatusCode::OK);
    client.assert_clean(&api).await;
}

// ---------------------------------------------------------------- broken requests, every route

/// A JSON body as text, with `field` set to the raw JSON `literal` (which serde_json::Value
/// cannot always hold, e.g. 1e400).
fn with_raw(body: &Value, field: &str, literal: &str) -> String {
    let mut body = body.clone();
    body[field] = json!("\u{1}raw\u{1}");
    body.to_string().replace("\"\\u0001raw\\u0001\"", literal)
}

/// Bodies that are wrong in one way each: syntax, shape, every field missing, null, of the
/// wrong type, out of range or hostile.
fn broken_bodies(body: &Value) -> Vec<(String, Vec<u8>)> {
    let mut broken: Vec<(String, Vec<u8>)> = [
        ("empty", ""),
        ("truncated", "{\"a\":"),
        ("not JSON", "<xml/>"),
        ("an array", "[]"),
        ("null", "null"),
        ("a number", "1e999"),
        ("an empty object", "{}"),
        ("a byte-order mark", "\u{feff}{}"),
    ]
    .into_iter()
    .map(|(what, text)| (what.to_owned(), text.as_bytes().to_vec()))
    .collect();
    broken.push(("invalid UTF-8".into(), b"{\"message\": \"\xff\xfe\", \"name\": \"\xc0\xaf\"}".to_vec()));
    // Deep, yet under the size limit, so the parser's depth limit is what answers.
    broken.push(("nested 30000 deep".into(), format!("{}{}", "[".repeat(30_000), "]".repeat(30_000)).into_bytes()));
    for (field, value) in body.as_object().unwrap() {
        let mut without = body.clone();
        without.as_object_mut().unwrap().remove(field);
        broken.push((format!("{field} missing"), without.to_string().into_bytes()));
        let wrong_type = match value {
            Value::String(_) => "12345",
            Value::Number(_) => "\"12345\"",
            Value::Array(_) => "{\"a\": 1}",
            Value::Object(_) => "[1]",
            _ => "\"x\"",
        };
        let mut literals = vec!["null", wrong_type, "true"];
        if value.is_number() {
            literals.extend([
                "1e400",
                "18446744073709551616",
                "-9223372036854775809",
                "-1",
                "0",
                "1.5",
                "9007199254740993",
            ]);
        }
        let long = "\u{1F4A3}".repeat(4000);
        let hostile = [
            "",
            " ",
            "\\u0000",
            "\\u202e\\u200b",
            "../../../../etc/passwd",
            "<script>alert(1)</script>",
            "' OR '1'='1",
            "${jndi:ldap://x.example/a}",
            &long,
        ];
        let hostile: Vec<String> = hostile.iter().map(|s| format!("\"{s}\"")).collect();
        if value.is_string() {
            literals.extend(hostile.iter().map(String::as_str));
        }
        if let Value::Array(items) = value {
            let many = format!("[{}]", vec![items.first().cloned().unwrap_or(Value::Null).to_string(); 150].join(","));
            broken.push((format!("{field} x150"), with_raw(body, field, &many).into_bytes()));
            broken.push((format!("{field} empty"), with_raw(body, field, "[]").into_bytes()));
            // The numbers of a line (quantities, prices) at the edges of what they are held in.
            let first = items.first().and_then(Value::as_object).cloned().unwrap_or_default();
            for (number, _) in first.iter().filter(|(_, v)| v.is_number()) {
                for edge in ["4294967295", "4294967296", "18446744073709551615", "1e400", "-1"] {
                    let line = with_raw(&Value::Object(first.clone()), number, edge);
                    let lines = format!("[{line},{line}]");
                    broken.push((format!("{field}[].{number} = {edge}"), with_raw(body, field, &lines).into_bytes()));
                }
            }
        }
        for literal in literals {
            broken.push((format!("{field} = {}", cut(literal)), with_raw(body, field, literal).into_bytes()));
        }
    }
    broken
}

/// Path parameter values an attacker tries (already URL-encoded).
const HOSTILE_IDS: &[&str] = &[
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "..",
    "%00",
    "%F0%9F%92%A3",
    "%C0%AF",
    "%25",
    "%27%20OR%20%271%27%3D%271",
    "%7Bproduct_id%7D",
    "ORDER%23x",
];

/// Query strings for lists: bad limits and cursors nobody gave out.
fn hostile_queries(other_user: &str) -> Vec<String> {
    let cursor = |value: Value| format!("cursor={}", B64.encode(value.to_string()));
    let mut queries: Vec<String> = [
        "limit=0",
        "limit=-1",
        "limit=101",
        "limit=abc",
        // 1e2 and 2.0 are integers to JSON Schema (and so to the API); these are not, or too big.
        "limit=1e3",
        "limit=2.5",
        "limit=99999999999999999999",
        "limit=",
        "limit=1&limit=2",
    ]
    .iter()
    .map(|q| q.to_string())
    .collect();
    // `cursor=` (empty) is no hostile query: it asks for the first page.
    queries.extend(["cursor=!!!", "cursor=%00", "cursor=W10"].iter().map(|q| q.to_string()));
    queries.extend(
        ["category=%00", "category=%F0%9F%92%A3", "category=..%2F..", "category=a&category=b"].map(String::from),
    );
    queries.push(format!("category={}", "a".repeat(3000)));
    queries.extend([
        cursor(json!({"pk": "x"})),
        cursor(json!({"a": "b"})),
        cursor(json!({"pk": format!("USER#{other_user}"), "sk": "NOTIF#01ZZZZZZZZZZZZZZZZZZZZZZZZ"})),
        cursor(json!({"pk": "ORDER#x", "sk": "ORDER", "gsi1pk": format!("USER#{other_user}"), "gsi1sk": "2099"})),
        cursor(json!({"pk": "PRODUCT#x", "sk": "PRODUCT", "gsi2pk": "PRODUCTS", "gsi2sk": "2099", "extra": "x"})),
        cursor(json!({"pk": "PRODUCT#x", "sk": "PRODUCT", "gsi1pk": "CATEGORY#books", "gsi1sk": "2099"})),
        cursor(json!({"pk": 1, "sk": ["x"]})),
    ]);
    queries
}

#[tokio::test]
async fn broken_requests_on_every_route_are_4xx_problems_that_reveal_nothing() {
    let api = LocalApi::start().await;
    let client = Client::new(&api);
    let world = World::make(&client).await;
    let stranger = client.register("customer").await;
    let all_routes = routes();

    // Each request as the caller the route wants: signed, or the customer's token (the
    // seller's where the customer's gets a 403), so the input is what gets judged.
    let mut callers = BTreeMap::new();
    for route in all_routes.iter().filter(|r| matches!(r.guard, Guard::Token(_))) {
        let probe =
            client.call(Some(&world.customer), route.method.clone(), &world.path(route), world.body(route)).await;
        let user = if probe.status == StatusCode::FORBIDDEN { &world.seller } else { &world.customer };
        callers.insert(route.key(), user.clone());
    }
    let caller = |route: &Route| callers.get(&route.key()).unwrap_or(&world.customer).clone();
    // The lists (docs/api.md: `?limit=`, `?cursor=`, `{items, next_cursor}`), found by asking.
    let mut lists = BTreeSet::new();
    for route in all_routes.iter().filter(|r| r.method == Method::GET && r.parameters().is_empty()) {
        let listed = client.call(Some(&caller(route)), Method::GET, &route.path, None).await;
        if listed.json().get("next_cursor").is_some() {
            lists.insert(route.key());
        }
    }
    assert!(lists.len() >= 3, "GET /products, /orders and /notifications are lists: {lists:?}");
    let send = |route: &Route, path: String, body: Vec<u8>, what: String| {
        let request = match route.guard {
            Guard::Iam => client.signed(route.method.clone(), &path, body, &Signer::local()),
            Guard::Token(_) => {
                client.request(route.method.clone(), &path).bearer_auth(&callers[&route.key()].token).body(body)
            }
            Guard::Public => client.request(route.method.clone(), &path).body(body),
        };
        client.send(format!("{} {what}", route.key()), request.header("content-type", "application/json"))
    };

    let mut requests = Vec::new();
    for route in &all_routes {
        let path = world.path(route);
        let body = world.body(route);
        let body_bytes = body.as_ref().map(|b| b.to_string().into_bytes()).unwrap_or_default();
        if let Some(body) = &body {
            for (what, broken) in broken_bodies(body) {
                requests.push(send(route, path.clone(), broken, format!("with body {what}")));
            }
        }
        for name in route.parameters() {
            for id in HOSTILE_IDS.iter().map(|s| s.to_string()).chain(["a".repeat(3000)]) {
                let ids = world.ids();
                let hostile =
                    route.path_with(|p| if p == name { id.clone() } else { ids.get(p).cloned().unwrap_or("x".into()) });
                requests.push(send(route, hostile, body_bytes.clone(), format!("with {name} = {}", cut(&id))));
            }
        }
        if route.method == Method::GET {
            for query in hostile_queries(&stranger.id) {
                requests.push(send(route, format!("{path}?{query}"), Vec::new(), format!("?{query}")));
            }
        }
    }
    let answers = client.all(requests).await;
    assert!(answers.len() > 500, "{} broken requests", answers.len());
    // Lists refuse a cursor they did not give out: 400, never a 5xx nor a page.
    let refused = answers
        .iter()
        .filter(|a| a.what.contains(" ?cursor=") && lists.iter().any(|list| a.what.starts_with(&format!("{list} ?"))));
    assert!(refused.clone().count() >= 3 * 10, "every list got the forged cursors");
    for answer in refused {
        answer.expect_problem(StatusCode::BAD_REQUEST);
    }

    // Headers: an over-long or non-ASCII Idempotency-Key is a 400; a correlation id that
    // is not one is replaced, never echoed.
    let checkout = |key: reqwest::header::HeaderValue| {
        let request = client
            .request(Method::POST, "/cart/checkout")
            .bearer_auth(&world.customer.token)
            .header("idempotency-key", key);
        client
            .send("POST /cart/checkout with a bad Idempotency-Key", request.json(&json!({"payment_token": "tok_visa"})))
    };
    client.put_in_cart(&world.customer, &world.product_id, 1).await;
    for key in ["k".repeat(65).into_bytes(), "ключ".as_bytes().to_vec(), b"a b".to_vec(), Vec::new()] {
        let value = reqwest::header::HeaderValue::from_bytes(&key).unwrap();
        checkout(value).await.expect_problem(StatusCode::BAD_REQUEST);
    }
    for correlation_id in ["x".repeat(65), "a b".into(), "<script>".into(), "ключ".into()] {
        let value = reqwest::header::HeaderValue::from_bytes(correlation_id.as_bytes()).unwrap();
        let answer = client
            .send(
                "GET /orders/x with a bad correlation id",
                client
                    .request(Method::GET, "/orders/x")
                    .bearer_auth(&world.customer.token)
                    .header("x-correlation-id", value),
            )
            .await;
        let echoed = answer.headers["x-correlation-id"].to_str().unwrap();
        assert_ne!(echoed.as_bytes(), correlation_id.as_bytes());
        assert!(
            (1..=64).contains(&echoed.len())
                && echoed.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        );
    }
    client.assert_clean(&api).await;
}
