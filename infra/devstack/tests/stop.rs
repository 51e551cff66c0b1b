//! Stopping the local stack is a barrier: once `LocalStack::run` has returned (its shutdown
//! future resolved), no function process runs — not the idle ones, not one busy with an
//! invocation, not one a cold start was spawning as the stop came — and none can start.
//!
//! Its own test binary (one test): every child of this process is a function devstack started.

mod common;
use common::{emulator_config, fixture_options};

use axum::body::Bytes;
use devstack::runtime::InvokeError;
use devstack::serve::LocalStack;
use serde_json::{Value, json};

/// The function processes (the fixture binary) among this process's children that have not
/// exited: `(pid, state)`. A zombie (exited, not yet reaped) does not count.
fn running_functions() -> Vec<(u32, char)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ...`; comm is cut at 15 bytes.
            let Some((comm, rest)) = stat.split_once('(').and_then(|(_, r)| r.rsplit_once(')')) else { continue };
            let state = rest.trim_start().chars().next().unwrap_or('?');
            if comm.starts_with("devstack-fixtur") && !matches!(state, 'Z' | 'X') {
                found.push((pid, state));
            }
        }
    }
    found
}

fn http(path: &str, query: &str) -> Bytes {
    Bytes::from(json!({"rawPath": path, "rawQueryString": query}).to_string())
}

#[tokio::test]
async fn after_stop_no_function_process_runs_and_none_can_start() {
    let config = emulator_config();
    let options = fixture_options("s");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = devstack::serve::api_url(listener.local_addr().unwrap());
    let local = LocalStack::prepare(&options, &config, &url).await.expect("the fixture stack starts");
    let runtime = local.runtime.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();

    // On its own task while this one serves: what is running and starting when the stop comes.
    let traffic = tokio::spawn({
        let runtime = runtime.clone();
        async move {
            // An idle instance.
            let idle = runtime.invoke("CrashyFunction", http("/crashy/pid", "")).await.expect("a warm instance");
            let idle: Value = serde_json::from_slice(&idle.payload).unwrap();
            assert_eq!(running_functions().len(), 1, "{idle}");
            // An instance busy with an invocation (0.5 s) when the stop comes.
            let busy = tokio::spawn({
                let runtime = runtime.clone();
                async move { runtime.invoke("BusyFunction", http("/busy/pid", "slow")).await }
            });
            while running_functions().len() < 2 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            // A cold start racing the stop, as a poller's or a schedule's invocation would.
            let racing = tokio::spawn({
                let runtime = runtime.clone();
                async move { runtime.invoke("EchoFunction", http("/echo", "")).await }
            });
            stop.send(()).unwrap();
            (busy, racing)
        }
    });

    local
        .run(&config, listener, async move {
            let _ = stopped.await;
        })
        .await
        .expect("the stack stops cleanly");
    // Right after `run` returns, with nothing awaited (no other task has run since): the stop
    // itself must be the barrier, not whatever its tasks do later.
    assert_eq!(running_functions(), [], "function processes still running after the stop returned");

    let (busy, racing) = traffic.await.unwrap();
    assert!(busy.await.unwrap().is_err(), "the invocation in flight was cut short");
    let _ = racing.await.unwrap();
    let after = runtime.invoke("EchoFunction", http("/echo", "")).await;
    assert!(matches!(after, Err(InvokeError::Unavailable(_))), "{after:?}");
    assert_eq!(running_functions(), [], "a function process started after the stop");
}
