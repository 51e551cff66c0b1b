//! Tokens and signatures: forged tokens on every token route, unmatched requests, and the
//! internal routes refusing anything but a valid SigV4 signature.

use super::*;

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
    let ghost = forger.sign(&forger.claims("usr_01ZZZZZZZZZZZZZZZZZZZZZZZZ", json!({})));
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
    // Every unmatched request goes to the one $default route: more than its burst of 200.
    let api = LocalApi::start_with(&system_tests::UNTHROTTLED).await;
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
            // GET / is the web app's page (CloudFront's on AWS, devstack's locally), not the API's.
            if path == "/" && method == Method::GET {
                continue;
            }
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
