//! The stack as `make dev` starts it: `devstack serve` on template.yaml, `GET /health`
//! through the local HTTP API, a sample replayed with `devstack invoke`, and a clean stop
//! that leaves no function process behind.

use std::time::Duration;

use system_tests::{LocalApi, devstack_command, unique_stack_name};

/// The pids of a process's children.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        found.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    found
}

#[tokio::test]
async fn health_is_served_through_the_local_api_and_stopping_leaves_nothing_running() {
    let mut api = LocalApi::start().await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let response =
        client.get(format!("{}/health", api.url)).header("x-correlation-id", "c-system").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-correlation-id"], "c-system");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"status": "ok"}));

    let functions = children(api.pid());
    assert!(!functions.is_empty(), "the health function runs as its own process");
    api.stop();
    for pid in functions {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z "), "function process {pid} is still running");
    }
}

#[test]
fn a_sample_event_replays_through_devstack_invoke() {
    let output = devstack_command()
        .args(["--stack-name", &unique_stack_name(), "invoke", "HealthFunction", "events/http-get-health.json"])
        .output()
        .expect("devstack invoke runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let response: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the response as JSON");
    assert_eq!(response["statusCode"], 200);
    assert_eq!(response["headers"]["x-correlation-id"], "c-sample-health");
    assert!(String::from_utf8_lossy(&output.stderr).contains("init"), "the cold start is reported");
}
