//! Sizes, throttling and broken requests on every route.

use super::*;

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

    // Five failures spelled five ways lock the one email from this address, even for the
    // right password.
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
    locked(&login(bob.clone(), PASSWORD).await);

    // The address itself has now failed over 20 times: it is refused whatever the email...
    let carl = fresh("carl");
    sign_up(carl.clone()).await.expect(StatusCode::CREATED);
    locked(&login(carl.clone(), PASSWORD).await);
    // ...while everyone else logs in as usual, Ann and Bob included.
    let elsewhere = Client::from_address(&api, "127.0.0.9");
    for email in [carl, ann, bob] {
        let body = json!({"email": email, "password": PASSWORD});
        elsewhere.call(None, Method::POST, "/auth/login", Some(body)).await.expect(StatusCode::OK);
    }
    client.assert_clean(&api).await;
    elsewhere.assert_clean(&api).await;
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
