//! devstack end to end on the emulator, with the scripted fixture function: the request
//! event API Gateway sends, response translation, the Lambda authorizer, IAM (SigV4) routes,
//! the runtime API (happy path, function error, timeout, crash and restart) and an SQS event
//! source whose poison message ends in the DLQ.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use devstack::serve::{LocalStack, StackOptions};
use serde_json::Value;

struct Running {
    url: String,
    queue_url: String,
    dlq_url: String,
}

fn emulator_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    aws_config::SdkConfig::builder()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("test", "test", None, None, "devstack-tests"),
        ))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
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
                let options = StackOptions {
                    template: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixture.yaml"),
                    stack_name: format!("d{}", ulid::Ulid::generate().to_string().to_lowercase().split_off(16)),
                    parameters: HashMap::new(),
                    bin_dir: PathBuf::from(env!("CARGO_BIN_EXE_devstack-fixture")).parent().unwrap().to_owned(),
                    max_instances: 2,
                };
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
