//! The stack as `make dev` starts it: `devstack serve` on template.yaml, `GET /health`
//! through the local HTTP API, a sample replayed with `devstack invoke`, and a clean stop
//! that leaves no function process behind.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use system_tests::unique_stack_name;

/// A binary cargo built next to this test (target/debug/NAME).
fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join(name)
}

fn devstack() -> Command {
    let mut command = Command::new(built("devstack"));
    command
        .current_dir(devstack::repo_root())
        .env(
            "AWS_ENDPOINT_URL",
            std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into()),
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The pids of a process's children.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        found.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    found
}

#[tokio::test]
async fn health_is_served_through_the_local_api_and_stopping_leaves_nothing_running() {
    let port = free_port();
    let mut serve = devstack()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--stack-name",
            &unique_stack_name(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("devstack starts");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/health");
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = loop {
        if let Ok(response) = client
            .get(&url)
            .header("x-correlation-id", "c-system")
            .send()
            .await
        {
            break response;
        }
        assert!(Instant::now() < deadline, "the local API did not come up");
        assert!(serve.try_wait().unwrap().is_none(), "devstack exited early");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-correlation-id"], "c-system");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );

    let functions = children(serve.id());
    assert!(
        !functions.is_empty(),
        "the health function runs as its own process"
    );
    // What Ctrl-C sends to the foreground process group, devstack gets here as SIGTERM.
    Command::new("kill")
        .arg("-TERM")
        .arg(serve.id().to_string())
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while serve.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "devstack did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in functions {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z "),
            "function process {pid} is still running"
        );
    }
}

#[test]
fn a_sample_event_replays_through_devstack_invoke() {
    let output = devstack()
        .args([
            "--stack-name",
            &unique_stack_name(),
            "invoke",
            "HealthFunction",
            "events/http-get-health.json",
        ])
        .output()
        .expect("devstack invoke runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let response: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the response as JSON");
    assert_eq!(response["statusCode"], 200);
    assert_eq!(response["headers"]["x-correlation-id"], "c-sample-health");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("init"),
        "the cold start is reported"
    );
}
