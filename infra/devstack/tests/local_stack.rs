//! devstack end to end on the emulator, with the scripted fixture function: the request
//! event API Gateway sends, response translation, the Lambda authorizer, IAM (SigV4) routes,
//! the runtime API (happy path, function error, timeout, crash and restart) and an SQS event
//! source whose poison message ends in the DLQ.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

mod common;
use common::{emulator_config, fixture_options};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use devstack::serve::LocalStack;
use serde_json::Value;

struct Running {
    url: String,
    queue_url: String,
    dlq_url: String,
}

/// One local stack for all tests of this file, on its own thread and runtime.
fn stack() -> &'static Running {
    static RUNNING: OnceLock<Running> = OnceLock::new();
    RUNNING.get_or_init(|| {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let config = emulator_config();
                let options = fixture_options("d");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = devstack::serve::api_url(listener.local_addr().unwrap());
                let local = LocalStack::prepare(&options, &config, &url).await.expect("the fixture stack starts");
                let running = Running {
                    url,
                    queue_url: local.stack.reference("FixtureQueue").unwrap().to_owned(),
                    dlq_url: local.stack.reference("FixtureDlq").unwrap().to_owned(),
                };
                ready_tx.send(running).unwrap();
                local.run(&config, listener, std::future::pending()).await.unwrap();
            });
        });
        ready_rx.recv_timeout(Duration::from_secs(60)).expect("the local stack came up")
    })
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

async fn get(path: &str) -> reqwest::Response {
    client().get(url(path)).send().await.unwrap()
}

fn url(path: &str) -> String {
    format!("{}{path}", stack().url)
}

#[tokio::test]
async fn requests_arrive_as_payload_2_0_events() {
    let response = client()
        .get(url("/echo/a%20b?x=1&x=2&y=z"))
        .header("cookie", "c1=v1; c2=v2")
        .header("x-multi", "one")
        .header("X-Correlation-Id", "c-echo")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("apigw-requestid"));
    let body = response.text().await.unwrap();
    let event: ApiGatewayV2httpRequest = serde_json::from_str(&body).expect("an aws_lambda_events payload 2.0 request");
    assert_eq!(event.version.as_deref(), Some("2.0"));
    assert_eq!(event.route_key.as_deref(), Some("GET /echo/{id}"));
    assert_eq!(event.raw_path.as_deref(), Some("/echo/a%20b"));
    assert_eq!(event.raw_query_string.as_deref(), Some("x=1&x=2&y=z"));
    assert_eq!(event.path_parameters["id"], "a b");
    assert_eq!(event.query_string_parameters.all("x"), Some(vec!["1", "2"]), "repeated values comma-joined");
    assert_eq!(event.cookies, Some(vec!["c1=v1".to_owned(), "c2=v2".to_owned()]));
    assert_eq!(event.headers["x-correlation-id"], "c-echo");
    assert!(!event.headers.contains_key("cookie"), "cookies move out of the headers");
    assert_eq!(event.request_context.http.method.as_str(), "GET");
    assert_eq!(event.request_context.stage.as_deref(), Some("$default"));
    assert!(event.request_context.request_id.is_some());
    assert!(!event.is_base64_encoded);
}

#[tokio::test]
async fn binary_bodies_are_base64_both_ways() {
    let response = client()
        .post(url("/echo"))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 159, 146, 150])
        .send()
        .await
        .unwrap();
    let event: Value = response.json().await.unwrap();
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "AJ+Slg==");

    let text =
        client().post(url("/echo")).header("content-type", "application/json").body(r#"{"a":1}"#).send().await.unwrap();
    let event: Value = text.json().await.unwrap();
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["body"], r#"{"a":1}"#);

    let response = get("/binary").await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-fixture"], "yes");
    let cookies: Vec<_> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
    assert_eq!(response.bytes().await.unwrap().as_ref(), [0u8, 1, 2, 255]);
}

#[tokio::test]
async fn functions_get_the_template_environment_resolved_locally() {
    let env: Value = get("/env").await.json().await.unwrap();
    assert_eq!(env["FROM_GLOBALS"], "yes");
    assert_eq!(env["QUEUE_URL"], stack().queue_url.as_str());
    assert_eq!(env["API_URL"], stack().url.as_str(), "the API Gateway URL becomes the local one");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "EchoFunction");
    assert!(env["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(env.get("HOME").is_none(), "a clean environment, as in Lambda");
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_huge_bodies_are_refused() {
    // The fixture has no $default route: API Gateway's own 404, as on AWS.
    let response = client().get(url("/nothing")).header("x-correlation-id", "c-404").send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().get("x-correlation-id").is_none(), "no function saw it");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer, serde_json::json!({"message": "Not Found"}));
    assert_eq!(client().delete(url("/echo/1")).send().await.unwrap().status(), 404);
    let huge = vec![b'x'; devstack::gateway::MAX_PAYLOAD_BYTES + 1];
    assert_eq!(client().post(url("/echo")).body(huge).send().await.unwrap().status(), 413);
}

#[tokio::test]
async fn the_web_app_is_served_at_the_root_and_everything_else_is_the_api() {
    let page = get("/").await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(page.headers()["cache-control"], "no-cache", "a new build is seen at once");
    assert!(page.text().await.unwrap().contains("the fixture web app"));
    assert_eq!(get("/index.html").await.status(), 200);
    let asset = get("/assets/app.js").await;
    assert_eq!(asset.status(), 200);
    assert!(asset.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert_eq!(asset.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(get("/assets/missing.js").await.status(), 404);
    // Nothing outside the built files, however the path is spelled.
    for path in ["/assets/..%2f..%2ffixture.yaml", "/assets/%2e%2e%2flocal_stack.rs"] {
        let answer = get(path).await;
        assert_ne!(answer.status(), 200, "{path}");
        assert!(!answer.text().await.unwrap().contains("AWSTemplateFormatVersion"), "{path}");
    }
    // Other methods on those paths are the API's: no route, so API Gateway's 404.
    let posted = client().post(url("/")).send().await.unwrap();
    assert_eq!(posted.status(), 404);
    assert_eq!(posted.json::<Value>().await.unwrap(), serde_json::json!({"message": "Not Found"}));
    assert_eq!(client().delete(url("/assets/app.js")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn the_lambda_authorizer_guards_its_routes() {
    assert_eq!(get("/private").await.status(), 401, "no identity source");
    let denied = client().get(url("/private")).header("authorization", "Bearer bad").send().await.unwrap();
    assert_eq!(denied.status(), 403);
    let allowed = client().get(url("/private")).header("authorization", "Bearer good").send().await.unwrap();
    assert_eq!(allowed.status(), 200);
    let event: Value = allowed.json().await.unwrap();
    assert_eq!(event["requestContext"]["authorizer"]["lambda"]["user_id"], "u-1");
    assert_eq!(event["requestContext"]["authorizer"]["lambda"]["role"], "customer");
}

/// A SigV4-signed POST, as an internal caller makes it.
fn signed(url: &str, body: &str, secret: &str) -> reqwest::RequestBuilder {
    let credentials = aws_credential_types::Credentials::new("test", secret, None, None, "t");
    let content_type = ("content-type", "application/json");
    let headers = shared::sigv4::signing_headers(
        "POST",
        url,
        &[content_type],
        body.as_bytes(),
        &credentials,
        "us-east-1",
        SystemTime::now(),
    )
    .unwrap();
    let mut builder = client().post(url).header(content_type.0, content_type.1).body(body.to_owned());
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder
}

#[tokio::test]
async fn internal_routes_accept_only_sigv4_with_the_local_credentials() {
    let target = url("/internal/echo");
    let unsigned = client().post(&target).body("{}").send().await.unwrap();
    assert_eq!(unsigned.status(), 403, "unsigned");
    assert_eq!(unsigned.json::<Value>().await.unwrap(), serde_json::json!({"message": "Forbidden"}), "as on AWS");
    assert_eq!(
        client().post(&target).header("authorization", "Bearer good").body("{}").send().await.unwrap().status(),
        403,
        "a user token does not open internal routes"
    );
    assert_eq!(signed(&target, "{}", "wrong-secret").send().await.unwrap().status(), 403, "wrong key");
    let tampered = signed(&target, "{}", "test").body(r#"{"x":1}"#).send().await.unwrap();
    assert_eq!(tampered.status(), 403, "body changed after signing");
    let accepted = signed(&target, r#"{"amount":1}"#, "test").send().await.unwrap();
    assert_eq!(accepted.status(), 200);
    let event: Value = accepted.json().await.unwrap();
    assert_eq!(event["requestContext"]["authorizer"]["iam"]["accessKey"], "test");
    assert_eq!(event["body"], r#"{"amount":1}"#);
}

#[tokio::test]
async fn function_errors_timeouts_and_crashes_become_500s_and_instances_restart() {
    let failed = get("/fail").await;
    assert_eq!(failed.status(), 500);
    let problem: Value = failed.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("returned an error"), "{problem}");

    let started = std::time::Instant::now();
    let timed_out = get("/sleep").await;
    assert_eq!(timed_out.status(), 500, "as API Gateway answers a Lambda timeout");
    assert!(started.elapsed() < Duration::from_secs(5), "the 1 s timeout is enforced");
    let problem: Value = timed_out.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("timed out"), "{problem}");

    // CrashyFunction serves only this test, one request at a time: one instance at most.
    let pid = |v: Value| v["pid"].as_u64().unwrap();
    let before = pid(get("/crashy/pid").await.json().await.unwrap());
    assert_eq!(before, pid(get("/crashy/pid").await.json().await.unwrap()), "reused");
    let crashed = get("/crashy/crash").await;
    assert_eq!(crashed.status(), 500);
    let problem: Value = crashed.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("exited"), "{problem}");
    let after = pid(get("/crashy/pid").await.json().await.unwrap());
    assert_ne!(before, after, "a new process serves after the crash");
}

#[tokio::test]
async fn a_function_marked_down_is_503_until_it_is_up_again() {
    // FlakyFunction serves only this test.
    let admin = |state: &str| client().post(url(&format!("/__devstack/functions/FlakyFunction/{state}"))).send();
    assert_eq!(admin("down").await.unwrap().status(), 204);
    assert_eq!(get("/flaky/pid").await.status(), 503);
    assert_eq!(admin("up").await.unwrap().status(), 204);
    assert_eq!(get("/flaky/pid").await.status(), 200);
    let unknown = client().post(url("/__devstack/functions/Nope/down")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn concurrent_requests_start_more_instances_up_to_the_limit() {
    // BusyFunction serves only this test; the fixture stack allows 2 instances a function.
    let mut requests = tokio::task::JoinSet::new();
    let started = std::time::Instant::now();
    for _ in 0..4 {
        requests.spawn(async {
            let response = get("/busy/pid?slow").await;
            response.json::<Value>().await.unwrap()["pid"].as_u64().unwrap()
        });
    }
    let pids: std::collections::BTreeSet<u64> = requests.join_all().await.into_iter().collect();
    assert_eq!(pids.len(), 2, "two instances served four concurrent requests");
    assert!(started.elapsed() >= Duration::from_millis(1000), "the other two waited for a free instance");
}

#[tokio::test]
async fn an_sqs_batch_deletes_what_succeeded_and_the_poison_message_reaches_the_dlq() {
    let running = stack();
    let sqs = aws_sdk_sqs::Client::new(&emulator_config());
    for body in ["fine-1", "poison", "fine-2"] {
        sqs.send_message().queue_url(&running.queue_url).message_body(body).send().await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let dlq = sqs
            .get_queue_attributes()
            .queue_url(&running.dlq_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        let in_dlq =
            dlq.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages].clone();
        if in_dlq == "1" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the poison message never reached the DLQ");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let moved = sqs.receive_message().queue_url(&running.dlq_url).send().await.unwrap();
    assert_eq!(moved.messages()[0].body(), Some("poison"));
    let left = sqs
        .get_queue_attributes()
        .queue_url(&running.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attributes = left.attributes().unwrap();
    assert_eq!(attributes[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert_eq!(
        attributes[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "0",
        "the good ones were deleted"
    );
}

#[tokio::test]
async fn the_source_ip_is_the_tcp_peer() {
    for peer in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        let address: std::net::IpAddr = peer.parse().unwrap();
        let client =
            reqwest::Client::builder().local_address(address).timeout(Duration::from_secs(20)).build().unwrap();
        let event: Value = client.get(url("/echo/ip")).send().await.unwrap().json().await.unwrap();
        assert_eq!(event["requestContext"]["http"]["sourceIp"], peer);
    }
}

/// The trace id of an X-Ray trace header, checked for X-Ray's form: `1-{8 hex}-{24 hex}` (by
/// `xray::trace_id_of`, whose own tests hold it to that form).
fn trace_id(header: &Value) -> String {
    let header = header.as_str().unwrap_or_else(|| panic!("a trace header: {header}"));
    let id = devstack::xray::trace_id_of(header).unwrap_or_else(|| panic!("not an X-Ray trace header: {header}"));
    id.to_owned()
}

#[tokio::test]
async fn a_request_is_one_x_ray_trace_from_the_gateway_into_the_function() {
    let traced: Value = get("/echo/trace").await.json().await.unwrap();
    let root = trace_id(&traced["header"]);
    assert_eq!(trace_id(&traced["lambda"]), root, "_X_AMZN_TRACE_ID continues the event's trace: {traced}");
    assert_eq!(traced["lambda"], traced["context"]);
    let lambda = traced["lambda"].as_str().unwrap();
    assert!(lambda.contains(";Parent=") && lambda.ends_with(";Sampled=1"), "{lambda}");

    let again: Value = get("/echo/trace").await.json().await.unwrap();
    assert_ne!(trace_id(&again["header"]), root, "each request starts its own trace");

    let upstream = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let traced_with = |header: &'static str| async move {
        let response = client().get(url("/echo/trace")).header("x-amzn-trace-id", header).send().await.unwrap();
        response.json::<Value>().await.unwrap()
    };
    let continued = traced_with(upstream).await;
    assert_eq!(trace_id(&continued["lambda"]), "1-5759e988-bd862e3fe1be46a994272793", "a client's trace goes on");
    // A header that is no trace is replaced by a new, valid one.
    trace_id(&traced_with("Root=1-xyz").await["lambda"]);
}

/// Where `ours` differs from AWS's sample `aws` in field names, nesting or JSON types (a null
/// in the sample matches anything), except the fields `absent` lists as left out on purpose.
fn differences(ours: &Value, aws: &Value, path: &str, absent: &[&str], found: &mut Vec<String>) {
    match (ours, aws) {
        (_, Value::Null) => {}
        (Value::Object(ours), Value::Object(aws)) => {
            // Header names and attribute maps are the request's own: only their value types count.
            let free_keys = path.ends_with(".headers")
                || path.ends_with("Parameters")
                || path.ends_with(".lambda")
                || path.ends_with("messageAttributes")
                || path.ends_with("stageVariables");
            for (key, expected) in aws {
                let at = format!("{path}.{key}");
                match ours.get(key) {
                    Some(value) => differences(value, expected, &at, absent, found),
                    None if free_keys || absent.contains(&at.as_str()) => {}
                    None => found.push(format!("{at} is missing")),
                }
            }
            for key in ours.keys().filter(|k| !aws.contains_key(*k)) {
                if !free_keys {
                    found.push(format!("{path}.{key} is not in AWS's sample"));
                }
            }
            if free_keys {
                let kind = aws.values().next();
                for (key, value) in ours {
                    if let Some(kind) = kind {
                        differences(value, kind, &format!("{path}.{key}"), absent, found);
                    }
                }
            }
        }
        (Value::Array(ours), Value::Array(aws)) => {
            if let (Some(ours), Some(aws)) = (ours.first(), aws.first()) {
                differences(ours, aws, &format!("{path}[0]"), absent, found);
            }
        }
        (ours, aws) => {
            let kind = |v: &Value| std::mem::discriminant(v);
            if kind(ours) != kind(aws) && !(ours.is_number() && aws.is_number()) {
                found.push(format!("{path}: {ours} where AWS's sample has {aws}"));
            }
        }
    }
}

fn aws_sample(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/aws-samples").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn assert_like_aws(ours: &Value, sample: &str, absent: &[&str]) {
    let mut found = Vec::new();
    differences(ours, &aws_sample(sample), "", absent, &mut found);
    assert!(found.is_empty(), "{sample}: {found:#?}\nours: {ours:#}");
}

/// Fields of AWS's samples an event here lacks, and why: mutual TLS only (`authentication`),
/// a stage with variables (`stageVariables`), a request with cookies, a query, path
/// parameters or a body.
const HTTP_ABSENT: &[&str] = &[".requestContext.authentication", ".stageVariables", ".cookies", ".body"];

#[tokio::test]
async fn the_events_devstack_builds_have_the_fields_of_aws_samples() {
    let allowed = client()
        .get(url("/private?parameter1=value1"))
        .header("authorization", "Bearer good")
        .header("cookie", "c1=v1")
        .send()
        .await
        .unwrap();
    let event: Value = allowed.json().await.unwrap();
    let with_path_absent: Vec<&str> = HTTP_ABSENT.iter().copied().chain([".pathParameters"]).collect();
    assert_like_aws(&event, "http-api-lambda-authorizer.json", &with_path_absent);
    let request: Value =
        serde_json::from_str(event["requestContext"]["authorizer"]["lambda"]["request"].as_str().unwrap()).unwrap();
    assert_like_aws(&request, "http-api-authorizer-request.json", &with_path_absent);

    let signed_event: Value =
        signed(&url("/internal/echo"), r#"{"amount":1}"#, "test").send().await.unwrap().json().await.unwrap();
    let absent: Vec<&str> = HTTP_ABSENT.iter().copied().chain([".pathParameters", ".queryStringParameters"]).collect();
    assert_like_aws(&signed_event, "http-api-iam.json", &absent);

    let path_event: Value = get("/echo/one").await.json().await.unwrap();
    let absent: Vec<&str> =
        HTTP_ABSENT.iter().copied().chain([".queryStringParameters", ".requestContext.authorizer"]).collect();
    assert_like_aws(&path_event, "http-api-lambda-authorizer.json", &absent);

    let schedule: Value =
        serde_json::from_slice(&devstack::serve::schedule_event("us-east-1", "000000000000", "Fn")).unwrap();
    assert_like_aws(&schedule, "eventbridge-schedule.json", &[]);
}

#[tokio::test]
async fn an_sqs_event_has_the_fields_of_aws_sample_and_continues_the_message_trace() {
    use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName as Name};
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let message = Message::builder()
        .message_id("059f36b4-87a3-44ab-83d2-661975830a7d")
        .receipt_handle("AQEB...")
        .body("Test message.")
        .md5_of_body("e4e68fb7bd0e697a0ae8f1bb342846b3")
        .attributes(Name::ApproximateReceiveCount, "1")
        .attributes(Name::AwsTraceHeader, trace)
        .attributes(Name::SentTimestamp, "1545082649183")
        .attributes(Name::SenderId, "AIDAIENQZJOLO23YVJ4VO")
        .attributes(Name::ApproximateFirstReceiveTimestamp, "1545082649185")
        .message_attributes(
            "myAttribute",
            MessageAttributeValue::builder().data_type("String").string_value("v").build().unwrap(),
        )
        .build();
    let event = devstack::pollers::sqs_event(
        std::slice::from_ref(&message),
        "arn:aws:sqs:us-east-1:000000000000:q",
        "us-east-1",
    );
    assert_like_aws(&event, "sqs.json", &[]);
    assert_eq!(devstack::pollers::trace_id(&[message]).as_deref(), Some("1-5759e988-bd862e3fe1be46a994272793"));
}

#[tokio::test]
async fn a_throttled_route_answers_api_gateways_429_once_its_burst_is_spent() {
    let statuses = [get("/throttled").await.status(), get("/throttled").await.status()];
    assert_eq!(statuses, [200, 200], "the burst of 2");
    let refused = get("/throttled").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.json::<Value>().await.unwrap(), serde_json::json!({"message": "Too Many Requests"}));
    assert_eq!(get("/echo/other").await.status(), 200, "other routes are not throttled");
}
