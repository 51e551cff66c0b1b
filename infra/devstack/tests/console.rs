//! The console's API (`/__devstack/api/`) on a fixture stack of its own: every function with
//! what it did, one request's waterfall by correlation id, and a DLQ read and redriven with
//! SQS's `StartMessageMoveTask` until its message is back in the queue it failed from.

mod common;
use common::{emulator_config, fixture_options};

use std::time::{Duration, Instant};

use devstack::serve::LocalStack;
use serde_json::Value;

async fn get(url: &str) -> Value {
    let answer = reqwest::get(url).await.expect("devstack answers");
    assert_eq!(answer.status(), 200, "{url}");
    answer.json().await.unwrap()
}

/// Polls `check` every 200 ms until it holds; fails with `what` after 30 s.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn queue<'a>(queues: &'a Value, logical_id: &str) -> &'a Value {
    queues.as_array().unwrap().iter().find(|q| q["logical_id"] == logical_id).unwrap_or_else(|| panic!("{queues}"))
}

#[tokio::test]
async fn the_console_shows_functions_a_requests_waterfall_and_redrives_a_dlq() {
    let config = emulator_config();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = devstack::serve::api_url(listener.local_addr().unwrap());
    let local = LocalStack::prepare(&fixture_options("c"), &config, &url).await.expect("the fixture stack starts");
    let queue_url = local.stack.reference("FixtureQueue").unwrap().to_owned();
    tokio::spawn(async move { local.run(&config, listener, std::future::pending()).await });
    let api = format!("{url}/__devstack/api");

    // One request, named by the correlation id the caller gave.
    let answer = reqwest::Client::new()
        .get(format!("{url}/echo/7"))
        .header("x-correlation-id", "console-test-1")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let trace = get(&format!("{api}/trace?correlation_id=console-test-1")).await;
    let steps: Vec<(&str, &str)> =
        trace.as_array().unwrap().iter().map(|s| (s["kind"].as_str().unwrap(), s["name"].as_str().unwrap())).collect();
    assert_eq!(steps, [("request", "GET /echo/7"), ("invocation", "EchoFunction")], "{trace}");
    let invocation = &trace[1];
    assert!(invocation["init_ms"].as_f64().is_some(), "the first call was a cold start: {invocation}");
    assert!(invocation["duration_ms"].as_f64().unwrap() <= trace[0]["duration_ms"].as_f64().unwrap());
    assert_eq!(trace[0]["outcome"], "200");
    let requests = get(&format!("{api}/requests")).await;
    assert_eq!(requests[0]["correlation_ids"][0], "console-test-1", "{requests}");

    let functions = get(&format!("{api}/functions")).await;
    let echo = functions.as_array().unwrap().iter().find(|f| f["name"] == "EchoFunction").unwrap();
    assert_eq!((echo["invocations"].as_u64(), echo["cold_starts"].as_u64()), (Some(1), Some(1)), "{echo}");
    assert!(echo["routes"].as_array().unwrap().iter().any(|r| r == "GET /echo/{id}"), "{echo}");
    let consumer = functions.as_array().unwrap().iter().find(|f| f["name"] == "ConsumerFunction").unwrap();
    assert!(consumer["queues"][0].as_str().unwrap().ends_with("-fixture"), "{consumer}");

    // A poison message fails twice and lands in the DLQ, where the console reads it.
    let sqs = aws_sdk_sqs::Client::new(&emulator_config());
    sqs.send_message().queue_url(&queue_url).message_body("poison for the console").send().await.unwrap();
    until("the poison message reaches the DLQ", async || {
        queue(&get(&format!("{api}/queues")).await, "FixtureDlq")["visible"] == 1
    })
    .await;
    let queues = get(&format!("{api}/queues")).await;
    let dlq = queue(&queues, "FixtureDlq");
    assert_eq!(dlq["dlq"], true);
    assert_eq!(dlq["redrive_to"], serde_json::json!(["FixtureQueue"]));
    assert!(dlq["oldest_age_ms"].as_f64().unwrap() > 0.0, "{dlq}");
    assert_eq!(queue(&queues, "FixtureQueue")["dlq"], false);
    let messages = get(&format!("{api}/queues/FixtureDlq/messages")).await;
    assert_eq!(messages[0]["body"], "poison for the console", "{messages}");

    // Redrive: back to its queue, where the consumer gets it again.
    let before = consumer_invocations(&api).await;
    let answer = reqwest::Client::new().post(format!("{api}/queues/FixtureDlq/redrive")).send().await.unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    until("the redriven message reaches its consumer again", async || consumer_invocations(&api).await > before).await;

    // What a caller gets wrong is a 4xx problem, never a 5xx.
    for (method, path, status) in [
        ("GET", "queues/Nope/messages", 404),
        // A consumer's queue is not read: each receive would count towards its maxReceiveCount.
        ("GET", "queues/FixtureQueue/messages", 400),
        ("POST", "queues/Nope/redrive", 404),
        ("GET", "trace", 400),
        ("GET", "nothing", 404),
    ] {
        let answer =
            reqwest::Client::new().request(method.parse().unwrap(), format!("{api}/{path}")).send().await.unwrap();
        assert_eq!(answer.status(), status, "{method} {path}");
        assert_eq!(answer.headers()["content-type"], "application/problem+json");
    }
}

async fn consumer_invocations(api: &str) -> u64 {
    let functions = get(&format!("{api}/functions")).await;
    functions.as_array().unwrap().iter().find(|f| f["name"] == "ConsumerFunction").unwrap()["invocations"]
        .as_u64()
        .unwrap()
}
