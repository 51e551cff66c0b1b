//! The Auth service through the local stack: register -> login -> me, duplicate emails,
//! every forged token, one account per mailbox (canonical emails), login and registration
//! throttling per client address (from
//! 127.0.0.2, 127.0.0.3, ...), the internal user route, and `user.registered`
//! reaching its three queues.

use std::time::{Duration, SystemTime};

use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::tokens::{Forger, foreign_key, forge};
use system_tests::{LocalApi, emulator};

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

async fn post(api: &LocalApi, path: &str, body: Value) -> reqwest::Response {
    client().post(format!("{}{path}", api.url)).json(&body).send().await.unwrap()
}

async fn me(api: &LocalApi, authorization: Option<&str>) -> reqwest::Response {
    let mut request = client().get(format!("{}/auth/me", api.url)).header("x-correlation-id", "c-me");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

fn unique_email(prefix: &str) -> String {
    format!("{prefix}.{}@Example.com", ulid::Ulid::generate().to_string().to_lowercase())
}

#[tokio::test]
async fn register_login_me_and_duplicate_emails() {
    let api = LocalApi::start().await;
    let email = unique_email("Ada");
    let registered =
        post(&api, "/auth/register", json!({"email": email, "password": "correct horse", "name": "Ada"})).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let session: Value = registered.json().await.unwrap();
    assert_eq!(session["user"]["email"], email.to_lowercase());
    assert_eq!(session["token_type"], "Bearer");

    let logged_in =
        post(&api, "/auth/login", json!({"email": email.to_uppercase(), "password": "correct horse"})).await;
    assert_eq!(logged_in.status(), StatusCode::OK);
    let token = logged_in.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();

    let mine = me(&api, Some(&format!("Bearer {token}"))).await;
    assert_eq!(mine.status(), StatusCode::OK);
    let user: Value = mine.json().await.unwrap();
    assert_eq!(user, session["user"]);

    let again =
        post(&api, "/auth/register", json!({"email": email.to_uppercase(), "password": "another one", "name": "Eve"}))
            .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(again.headers()["content-type"], "application/problem+json");

    let bad = post(&api, "/auth/register", json!({"email": "nope", "password": "correct horse", "name": "X"})).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_forged_token_is_401_problem_json() {
    let api = LocalApi::start().await;
    let forger = Forger::of(&api).await;
    let claims = |changes: Value| forger.claims("usr_forged", changes);
    let valid = forger.sign(&claims(json!({})));
    assert_eq!(me(&api, Some(&format!("Bearer {valid}"))).await.status(), StatusCode::UNAUTHORIZED, "no such account");

    use base64::Engine;
    let b64 = |text: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let unsigned = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#.into()), b64(claims(json!({})).to_string()));
    let (foreign, foreign_kid) = foreign_key();
    let hs256 = json!({"alg": "HS256", "typ": "JWT", "kid": forger.kid});
    let bearer = |token: String| Some(format!("Bearer {token}"));
    let cases = [
        ("missing header", None),
        ("wrong scheme", Some(format!("Basic {valid}"))),
        ("malformed", Some("Bearer not-a-token".to_owned())),
        ("bad signature", bearer(forge(&forger.header(), &claims(json!({})), Algorithm::EdDSA, &foreign))),
        (
            "foreign kid",
            bearer(forge(&json!({"alg": "EdDSA", "kid": foreign_kid}), &claims(json!({})), Algorithm::EdDSA, &foreign)),
        ),
        ("alg none", Some(format!("Bearer {unsigned}"))),
        (
            "HS256 keyed with the public key",
            bearer(forge(&hs256, &claims(json!({})), Algorithm::HS256, &forger.public_key)),
        ),
        (
            "expired",
            bearer(forger.sign(&claims(
                json!({"iat": chrono::Utc::now().timestamp() - 7200, "exp": chrono::Utc::now().timestamp() - 3600}),
            ))),
        ),
        ("not yet valid", bearer(forger.sign(&claims(json!({"nbf": chrono::Utc::now().timestamp() + 3600}))))),
        ("wrong issuer", bearer(forger.sign(&claims(json!({"iss": "evil"}))))),
        ("wrong audience", bearer(forger.sign(&claims(json!({"aud": "other"}))))),
    ];
    for (case, header) in cases {
        let response = me(&api, header.as_deref()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{case}");
        assert_eq!(response.headers()["x-correlation-id"], "c-me", "{case}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 401, "{case}");
        assert_eq!(problem["correlation_id"], "c-me", "{case}");
    }
}

/// `path` with `body`, sent from the loopback address `ip` (all of 127.0.0.0/8 is loopback):
/// another client, as API Gateway's `sourceIp` sees it.
async fn post_from(api: &LocalApi, ip: &str, path: &str, body: Value) -> reqwest::Response {
    let address: std::net::IpAddr = ip.parse().unwrap();
    let client = reqwest::Client::builder().local_address(address).timeout(Duration::from_secs(20)).build().unwrap();
    client.post(format!("{}{path}", api.url)).json(&body).send().await.unwrap()
}

fn retry_after(answer: &reqwest::Response) -> u64 {
    answer.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn failed_logins_lock_an_email_only_from_the_address_that_failed_and_twenty_lock_that_address() {
    let api = LocalApi::start().await;
    let email = unique_email("locked");
    post(&api, "/auth/register", json!({"email": email, "password": "correct horse", "name": "L"})).await;
    let (attacker, owner) = ("127.0.0.2", "127.0.0.3");
    let login = |ip: &'static str, email: String, password: &'static str| {
        let api = &api;
        async move { post_from(api, ip, "/auth/login", json!({"email": email, "password": password})).await }
    };
    let unknown = login(attacker, unique_email("ghost"), "whatever1").await;
    let wrong = login(attacker, email.clone(), "wrong horse").await;
    assert_eq!((unknown.status(), wrong.status()), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    let detail = |v: Value| v["detail"].clone();
    assert_eq!(detail(unknown.json().await.unwrap()), detail(wrong.json().await.unwrap()), "indistinguishable");
    for _ in 2..=5 {
        assert_eq!(login(attacker, email.clone(), "wrong horse").await.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = login(attacker, email.clone(), "correct horse").await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS, "the address that failed waits");
    assert!((1..=900).contains(&retry_after(&locked)));
    let owners = login(owner, email.clone(), "correct horse").await;
    assert_eq!(owners.status(), StatusCode::OK, "nobody locks the owner out by knowing their email");

    // 20 failures from one address, whatever the emails, refuse that address; only that one.
    let spraying = "127.0.0.4";
    for i in 0..20 {
        let answer = login(spraying, unique_email(&format!("spray{i}")), "wrong horse").await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let refused = login(spraying, email.clone(), "correct horse").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let problem: Value = refused.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("from this address"), "{problem}");
    assert_eq!(login(owner, email.clone(), "correct horse").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_mailbox_holds_one_account_whatever_its_spelling() {
    let api = LocalApi::start().await;
    let id = ulid::Ulid::generate().to_string().to_lowercase();
    let register = |email: String| {
        let api = &api;
        async move { post(api, "/auth/register", json!({"email": email, "password": "correct horse", "name": "D"})).await }
    };
    // Full-width letters (NFKC) and a Unicode domain (IDNA) are one mailbox with the plain one.
    let first = register(format!("ｄｕｐ{id}@bücher.example")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let session: Value = first.json().await.unwrap();
    assert_eq!(session["user"]["email"], format!("dup{id}@xn--bcher-kva.example"));
    for twin in [format!("DUP{id}@xn--bcher-kva.example"), format!("dup{id}@BÜCHER.example")] {
        assert_eq!(register(twin.clone()).await.status(), StatusCode::CONFLICT, "{twin}");
    }
    let login =
        post(&api, "/auth/login", json!({"email": format!("Dup{id}@Bücher.example"), "password": "correct horse"}));
    assert_eq!(login.await.status(), StatusCode::OK, "any spelling logs in");
    // A Cyrillic "а" among Latin letters, and a quoted local part, are no addresses.
    for bad in [format!("\u{430}da{id}@example.com"), format!("\"d {id}\"@example.com")] {
        assert_eq!(register(bad.clone()).await.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn registrations_are_throttled_per_address() {
    let api = LocalApi::start().await;
    let register = |ip: &'static str| {
        let api = &api;
        let body = json!({"email": unique_email("many"), "password": "correct horse", "name": "M"});
        async move { post_from(api, ip, "/auth/register", body).await }
    };
    for n in 0..auth::handlers::register::REGISTRATIONS_PER_ADDRESS {
        assert_eq!(register("127.0.0.5").await.status(), StatusCode::CREATED, "registration {n}");
    }
    let refused = register("127.0.0.5").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!((1..=900).contains(&retry_after(&refused)));
    assert_eq!(register("127.0.0.6").await.status(), StatusCode::CREATED, "another address is not refused");
}

#[tokio::test]
async fn the_internal_user_route_takes_only_signed_requests() {
    let api = LocalApi::start().await;
    let registered =
        post(&api, "/auth/register", json!({"email": unique_email("int"), "password": "correct horse", "name": "I"}))
            .await;
    let session: Value = registered.json().await.unwrap();
    let url = format!("{}/internal/users/{}", api.url, session["user"]["user_id"].as_str().unwrap());
    let token = session["access_token"].as_str().unwrap();

    assert_eq!(client().get(&url).send().await.unwrap().status(), StatusCode::FORBIDDEN, "unsigned");
    let with_token = client().get(&url).header("authorization", format!("Bearer {token}")).send().await.unwrap();
    assert_eq!(with_token.status(), StatusCode::FORBIDDEN, "a user token does not open internal routes");

    let credentials = aws_credential_types::Credentials::new("test", "test", None, None, "test");
    let headers =
        shared::sigv4::signing_headers("GET", &url, &[], b"", &credentials, "us-east-1", SystemTime::now()).unwrap();
    let mut request = client().get(&url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let found = request.send().await.unwrap();
    assert_eq!(found.status(), StatusCode::OK);
    assert_eq!(found.json::<Value>().await.unwrap(), session["user"]);
}

#[tokio::test]
async fn user_registered_reaches_notification_ai_cart_and_seller_queues() {
    let api = LocalApi::start().await;
    let registered = post(
        &api,
        "/auth/register",
        json!({"email": unique_email("events"), "password": "correct horse", "name": "E", "role": "seller"}),
    )
    .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let session: Value = registered.json().await.unwrap();
    let user = session["user"].clone();

    let config = emulator().await;
    // The cart consumer takes its copy off cart-events-queue: its effect, the new user's
    // cart record, is the proof it arrived.
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let user_id = user["user_id"].as_str().unwrap();
    // Whether `table` comes to hold the item at (pk, sk) within 20 s.
    let appears = |table: &str, pk: String, sk: &str| {
        let key = |k: &str, v: String| (k.to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(v));
        let item_key = std::collections::HashMap::from([key("pk", pk), key("sk", sk.to_owned())]);
        let (dynamodb, table) = (&dynamodb, api.reference(table));
        system_tests::eventually(Duration::from_secs(20), move || {
            let (item_key, table) = (item_key.clone(), table.clone());
            async move { dynamodb.get_item().table_name(table).set_key(Some(item_key)).send().await.ok()?.item.map(|_| ()) }
        })
    };
    let cart = appears("CartTable", format!("CART#{user_id}"), "CART").await;
    assert!(cart.is_some(), "CartEventsQueue: no cart was made for the new user");

    // The notification consumer's effect: the new user's welcome notification.
    let token = session["access_token"].as_str().unwrap().to_owned();
    let welcomed = system_tests::eventually(Duration::from_secs(20), || async {
        let listed: Value = client()
            .get(format!("{}/notifications", api.url))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (listed["items"][0]["template"] == "welcome").then_some(())
    })
    .await;
    assert!(welcomed.is_some(), "NotificationQueue: no welcome notification");

    // AI Buddy's effect: the profile it keeps for the user.
    let profile = appears("AiBuddyTable", format!("USER#{user_id}"), "PROFILE").await;
    assert!(profile.is_some(), "AiEventsQueue: no profile was made for the new user");

    // The Seller service's effect: the seller's pending profile.
    let seller = appears("SellerTable", format!("SELLER#{user_id}"), "PROFILE").await;
    assert!(seller.is_some(), "SellerUpdatesQueue: no seller profile was made for the new seller");

    let sqs = aws_sdk_sqs::Client::new(&config);
    for queue in ["PaymentSettlementQueue", "OrderUpdatesQueue"] {
        assert!(system_tests::drain(&sqs, &api.reference(queue)).await.unwrap().is_empty(), "{queue}");
    }
}
